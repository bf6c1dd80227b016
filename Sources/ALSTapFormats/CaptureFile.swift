import ALSTapALS

/// The capture file (`alstap tap -w`, `/tap?format=capture`), version 1:
///
///     header  "ALSTAPCAP\n"  u16 format version  u16 n  n bytes: the writing alstap's version (UTF-8)
///     record  u8 kind  u32 length  length bytes                       (integers big-endian)
///       kind 0x00  entries: i64 receive time (µs since the epoch), then one Envoy
///                  StreamAccessLogsMessage (its Identifier, then the entries as received)
///       kind 0x80  notice: one JSON notice, as a tap's (`{"type":"lost",...}`)
///       other      skipped by readers (room for later kinds)
///
/// Records are the replica format's frames (`ReplicaFrames`) with the time in front of the
/// message, so a tap subscriber writes them the same way. Writers append whole records; a file
/// cut short reads up to its last whole one.
public enum CaptureFile {
    public static let magic = Array("ALSTAPCAP\n".utf8)
    public static let version: UInt16 = 1
    /// The alstap release that writes the files (also `alstap --version`).
    public static let alstapVersion = "0.9.0"
    public static let contentType = "application/vnd.alstap.capture"
    public static let entriesKind: UInt8 = 0
    public static let noticeKind: UInt8 = ReplicaFrames.noticeFlag
    /// A record longer than this is no record of ours (the server's messages are 4 MiB at most).
    public static let maxRecordBytes = 64 << 20
    static let timeBytes = 8

    /// The file header.
    public static let header: SharedBytes = {
        let out = ByteWriter(capacity: 32)
        out.append(magic)
        let version = Array(alstapVersion.utf8)
        for value in [Self.version, UInt16(version.count)] {
            out.append(UInt8(value >> 8))
            out.append(UInt8(value & 0xFF))
        }
        out.append(version)
        return out.take()
    }()

    static func appendTime(_ micros: Int64, to out: ByteWriter) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: micros >> shift)) }
    }
}

/// Reads a capture from bytes fed in any pieces (logic only: the CLI feeds it a file or a
/// server's stream). Nothing in the input can make it crash or gather more than one record: a
/// file that is not a capture, or of a newer version, is an error; a record over the bound is
/// one too; what follows the last whole record is reported by `finish`.
public struct CaptureReader {
    public enum Event {
        /// The header: the file's format version and the alstap that wrote it.
        case header(version: UInt16, writer: String)
        /// An entries record: its receive time, and the StreamAccessLogsMessage.
        case entries(receivedMicros: Int64, message: UnsafeRawBufferPointer)
        /// A notice record's JSON.
        case notice(UnsafeRawBufferPointer)
    }

    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
        public init(message: String) { self.message = message }
    }

    /// Bytes of the record (or header) being gathered.
    private var pending: [UInt8] = []
    private var sawHeader = false
    /// Whole records read, and the offset where the last one ended.
    public private(set) var records = 0
    public private(set) var consumed = 0

    public init() {}

    /// Feeds `bytes`; calls `onEvent` for each whole header or record, in order (the pointers
    /// are valid during the call only). Whole records in `bytes` are read in place; only a
    /// record split across feeds is gathered.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ onEvent: (Event) throws -> Void) throws {
        guard !pending.isEmpty else {
            let used = try consume(bytes, onEvent)
            if used < bytes.count { pending = Array(bytes[used...]) }
            return
        }
        // Moved out (not copied), appended to in place, moved back: a large record gathered
        // from many pieces is copied once.
        var data = pending
        pending = []
        data.append(contentsOf: bytes)
        let used = try data.withUnsafeBytes { try consume($0, onEvent) }
        if used == 0 {
            pending = data
        } else if used < data.count {
            pending = Array(data[used...])
        }
    }

    /// Reads every whole header and record at the start of `bytes`; returns their length.
    private mutating func consume(_ bytes: UnsafeRawBufferPointer, _ onEvent: (Event) throws -> Void) throws -> Int {
        var start = 0
        while let used = try next(UnsafeRawBufferPointer(rebasing: bytes[start...]), onEvent) {
            start += used
            consumed += used
        }
        return start
    }

    /// The input ended: nil when it ended after a whole record (or header), else what was cut.
    public func finish() -> String? {
        guard !pending.isEmpty else { return sawHeader ? nil : "empty: not an alstap capture" }
        guard sawHeader else { return "cut short inside its header (\(pending.count) bytes)" }
        return "cut short: \(pending.count) bytes after the last whole record (record \(records + 1) is incomplete)"
    }

    /// One header or record at the start of `bytes`: its length, or nil when it is not whole yet.
    private mutating func next(_ bytes: UnsafeRawBufferPointer, _ onEvent: (Event) throws -> Void) throws -> Int? {
        if !sawHeader {
            let magic = CaptureFile.magic
            let compared = min(bytes.count, magic.count)
            guard bytes.prefix(compared).elementsEqual(magic.prefix(compared)) else {
                throw Failure(message: "not an alstap capture (no \"ALSTAPCAP\" header)")
            }
            guard bytes.count >= magic.count + 4 else { return nil }
            let version = Self.uint16(bytes, at: magic.count)
            guard version == CaptureFile.version else {
                throw Failure(message: version > CaptureFile.version
                    ? "capture format version \(version) is newer than this alstap reads (\(CaptureFile.version)): upgrade alstap"
                    : "unknown capture format version \(version)")
            }
            let length = Int(Self.uint16(bytes, at: magic.count + 2))
            guard bytes.count >= magic.count + 4 + length else { return nil }
            let writer = String(decoding: bytes[(magic.count + 4)..<(magic.count + 4 + length)], as: UTF8.self)
            sawHeader = true
            try onEvent(.header(version: version, writer: writer))
            return magic.count + 4 + length
        }
        guard bytes.count >= 5 else { return nil }
        let kind = bytes[0]
        let length = Int(Self.uint16(bytes, at: 1)) << 16 | Int(Self.uint16(bytes, at: 3))
        guard length <= CaptureFile.maxRecordBytes else {
            throw Failure(message: "record \(records + 1) claims \(length) bytes, over \(CaptureFile.maxRecordBytes): not a capture record")
        }
        guard bytes.count >= 5 + length else { return nil }
        let body = UnsafeRawBufferPointer(rebasing: bytes[5..<(5 + length)])
        switch kind {
        case CaptureFile.entriesKind:
            guard length >= CaptureFile.timeBytes else {
                throw Failure(message: "record \(records + 1) is too short for an entries record")
            }
            let micros = (0..<CaptureFile.timeBytes).reduce(Int64(0)) { $0 << 8 | Int64(body[$1]) }
            try onEvent(.entries(receivedMicros: micros, message: UnsafeRawBufferPointer(rebasing: body[CaptureFile.timeBytes...])))
        case CaptureFile.noticeKind:
            try onEvent(.notice(body))
        default:
            break  // a later kind: skipped
        }
        records += 1
        return 5 + length
    }

    private static func uint16(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt16 {
        UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }
}
