#if canImport(Glibc)
import Glibc
#endif

/// The output formats a subscriber can ask for.
public enum OutputFormat: Int, Sendable, CaseIterable {
    case json = 0
    case text = 1
    /// gRPC-framed ALS messages, for alstap peers (see `ReplicaFrames` in ALSTapFormats).
    case als = 2
    /// Server-sent events for browsers: the JSON lines, each as one event.
    case sse = 3
    /// A capture file (`CaptureFile` in ALSTapFormats): the replica format's messages, each with
    /// its receive time, behind a file header.
    case capture = 4

    /// The encoding a subscriber's lines are cut from (server-sent events wrap the JSON lines; a
    /// capture holds ALS entries).
    public var encoding: OutputFormat {
        switch self {
        case .sse: .json
        case .capture: .als
        default: self
        }
    }
}

/// A set of formats, as bits: the decoder encodes only what someone subscribed to.
public struct FormatSet: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(_ format: OutputFormat) { rawValue = 1 << format.encoding.rawValue }
    public static let json = FormatSet(.json)
    public static let text = FormatSet(.text)
    public static let als = FormatSet(.als)
    /// JSON lines with their members' offsets (`EncodedLines.members`), for field masks.
    public static let memberIndex = FormatSet(rawValue: 1 << 4)
    public func contains(_ format: OutputFormat) -> Bool { contains(FormatSet(format)) }
}

/// Immutable encoded lines, shared by every subscriber of a format without copies.
///
/// `@unchecked Sendable`: the buffer is written once in `init` and only read afterwards;
/// its address is stable for the object's life, so writers can point `iovec`s at it.
public final class SharedBytes: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let count: Int

    public init(copying bytes: UnsafeRawBufferPointer) {
        count = bytes.count
        base = .allocate(byteCount: max(count, 1), alignment: 1)
        if count > 0 { base.copyMemory(from: bytes.baseAddress!, byteCount: count) }
    }

    /// Takes ownership of memory from `UnsafeMutableRawPointer.allocate` (deallocated in deinit).
    init(adopting base: UnsafeMutableRawPointer, count: Int) {
        self.base = base
        self.count = count
    }

    public convenience init(_ text: String) {
        // Copied inside the closure: a small string's UTF-8 lives in a temporary that does
        // not outlive `withUTF8`.
        let count = text.utf8.count
        let base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 1)
        var copy = text
        copy.withUTF8 { utf8 in
            if count > 0 { base.copyMemory(from: utf8.baseAddress!, byteCount: count) }
        }
        self.init(adopting: base, count: count)
    }

    deinit { base.deallocate() }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

/// One format's lines of a batch: the bytes, and where each entry's line ends.
public struct EncodedLines: Sendable {
    public let bytes: SharedBytes
    /// `lineEnds[i]` is the offset just past entry i's newline.
    public let lineEnds: [UInt32]
    /// JSON with `FormatSet.memberIndex`: where each line's top-level members start.
    public let members: MemberIndex?
    /// JSON: the top-level members the lines hold (all but while only masked subscribers read).
    public let kept: JSONMembers

    public init(bytes: SharedBytes, lineEnds: [UInt32], members: MemberIndex? = nil, kept: JSONMembers = .all) {
        self.bytes = bytes
        self.lineEnds = lineEnds
        self.members = members
        self.kept = kept
    }

    /// The byte range of entries `first..<last`.
    public func range(_ entries: Range<Int>) -> Range<Int> {
        (entries.lowerBound == 0 ? 0 : Int(lineEnds[entries.lowerBound - 1]))..<Int(lineEnds[entries.upperBound - 1])
    }
}

/// The entries of one gRPC message, encoded once per requested format and shared by every subscriber.
public struct EncodedBatch: Sendable {
    public let entryCount: Int
    /// All entries of a message are of one type.
    public let isTCP: Bool
    public let json: EncodedLines?
    public let text: EncodedLines?
    /// Each entry's `log_entry` field, for `format=als`.
    public let als: EncodedLines?
    /// The reporter's packed Identifier, sent ahead of `als` entries.
    public let identifier: SharedBytes?
    /// Per-entry facts for filters; nil when no subscriber filters.
    public let facts: EntryFactsTable?
    /// Monotonic time the message was decoded (latency measurement; 0 for a replay's).
    public let decodedAtNanos: UInt64
    /// Monotonic time the message was received (a replay's too): a capture record's time.
    public var receivedNanos: UInt64
    /// Order of publication, set by the hub (a replay skips live batches it already sent).
    public var sequence: UInt64 = 0

    public init(entryCount: Int, isTCP: Bool, json: EncodedLines?, text: EncodedLines?, als: EncodedLines? = nil,
                identifier: SharedBytes? = nil, facts: EntryFactsTable?, decodedAtNanos: UInt64) {
        self.entryCount = entryCount
        self.isTCP = isTCP
        self.json = json
        self.text = text
        self.als = als
        self.identifier = identifier
        self.facts = facts
        self.decodedAtNanos = decodedAtNanos
        receivedNanos = decodedAtNanos
    }

    /// Bytes of all the lines it holds, every format, and of its facts: what keeping it alive costs.
    public var encodedBytes: Int {
        (json?.bytes.count ?? 0) + (text?.bytes.count ?? 0) + (als?.bytes.count ?? 0) + (facts?.retainedBytes ?? 0)
    }

    public func lines(for format: OutputFormat) -> EncodedLines? {
        switch format {
        case .json: json
        case .text: text
        case .als, .capture: als
        case .sse: json
        }
    }
}

/// Where the top-level members of a batch's JSON lines start: offsets into its bytes, at each
/// member's comma (or the first member's quote), line after line.
public struct MemberIndex: Sendable {
    public let offsets: [UInt32]
    /// `offsets` index of each line's first member.
    public let lineFirst: [UInt32]

    public init(offsets: [UInt32], lineFirst: [UInt32]) {
        self.offsets = offsets
        self.lineFirst = lineFirst
    }

    /// Line `line`'s members' offsets.
    public func members(ofLine line: Int) -> ArraySlice<UInt32> {
        offsets[Int(lineFirst[line])..<(line + 1 < lineFirst.count ? Int(lineFirst[line + 1]) : offsets.count)]
    }
}
