import CEnvoyProtos
import CProtobufC
import CWireScan

/// What one message may cost, checked before and while it is decoded.
public struct DecodeLimits: Sendable, Equatable {
    /// Nesting of google.protobuf.Struct and ListValue values (metadata), counted as a JSON
    /// value's depth: a Struct inside a Struct is two levels. They nest without end in the
    /// schema, and protobuf-c's unpack recurses three times a level: a few thousand levels
    /// (40 KB) would overflow the stack. Nothing else in these schemas recurses.
    public var maxDepth = 100
    /// Log entries in one StreamAccessLogsMessage.
    public var maxEntries = 10_000
    /// Memory one message may unpack into (the decoder's arena), and also the most bytes of
    /// lines it may produce, all formats together.
    public var maxUnpackedBytes = 16 << 20

    public init() {}
}

/// Walks a message's wire bytes before protobuf-c unpacks them: nesting depth and the number
/// of entries are checked without allocating, and each entry's bytes are located (a relay then
/// forwards them as received).
///
/// Only fields whose type can lead to a recursive type (Struct, Value, ListValue) are entered,
/// every other field is skipped by its length, and a message too short to nest past the limit
/// (a level takes at least 4 bytes) is not read at all: most entries cost one comparison.
final class WireCheck {
    let limits: DecodeLimits
    /// The byte ranges of the message's log entries, in the order protobuf-c unpacks them.
    private(set) var entryRanges: [Range<Int>] = []

    // The root descriptors are read only while the schema is built (a copy of the root is fine:
    // nothing points back to it, and Struct's own cycle goes through its real address).
    private static let message = withUnsafePointer(to: envoy__service__accesslog__v3__stream_access_logs_message__descriptor) {
        WireSchema(root: $0)
    }
    private static let structSchema = withUnsafePointer(to: google__protobuf__struct__descriptor) { WireSchema(root: $0) }
    private static let identifierNode = message.child(of: message.root, field: 1)!
    private static let httpEntryNode = message.child(of: message.child(of: message.root, field: 2)!, field: 1)!
    private static let tcpEntryNode = message.child(of: message.child(of: message.root, field: 3)!, field: 1)!

    // The statics, read once (a static is a lazy global: a check on every access).
    private let schema = WireCheck.message
    private let identifier = WireCheck.identifierNode
    private let httpEntry = WireCheck.httpEntryNode
    private let tcpEntry = WireCheck.tcpEntryNode

    init(limits: DecodeLimits) {
        self.limits = limits
    }

    /// Checks a StreamAccessLogsMessage. Throws INVALID_ARGUMENT for bad wire format or
    /// nesting over the limit, RESOURCE_EXHAUSTED for too many entries.
    func check(message payload: UnsafeRawBufferPointer) throws(GRPCStatusError) {
        entryRanges.removeAll(keepingCapacity: true)
        guard let base = payload.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var reader = WireReader(base: base, range: 0..<payload.count)
        var logsField: UInt32 = 0
        while !reader.atEnd {
            let (number, wireType) = try reader.tag()
            guard wireType == 2, (1...3).contains(number) else {
                try reader.skip(wireType)
                continue
            }
            let field = try reader.lengthDelimited()
            if number == 1 {
                try schema.check(base, field, node: identifier, depth: 0, limit: limits.maxDepth)
                continue
            }
            // http_logs and tcp_logs are a oneof: protobuf-c keeps the last one seen, and merges
            // repeats of the same one (their entries concatenate).
            if number != logsField {
                entryRanges.removeAll(keepingCapacity: true)
                logsField = number
            }
            let entryNode = number == 2 ? httpEntry : tcpEntry
            let maxEntries = limits.maxEntries, maxDepth = limits.maxDepth
            var entries = WireReader(base: base, range: field)
            while !entries.atEnd {
                let (entryNumber, entryWireType) = try entries.tag()
                guard entryNumber == 1, entryWireType == 2 else {
                    try entries.skip(entryWireType)
                    continue
                }
                let entry = try entries.lengthDelimited()
                guard entryRanges.count < maxEntries else {
                    throw GRPCStatusError(.resourceExhausted,
                                          "message has more than \(maxEntries) log entries",
                                          reason: .tooManyEntries)
                }
                entryRanges.append(entry)
                try schema.check(base, entry, node: entryNode, depth: 0, limit: maxDepth)
            }
        }
    }

    /// Checks a google.protobuf.Struct (an Any's value) about to be unpacked at `depth`.
    func check(struct bytes: UnsafeRawBufferPointer, depth: Int) throws(GRPCStatusError) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        try Self.structSchema.check(base, 0..<bytes.count, node: Self.structSchema.root, depth: depth,
                                    limit: limits.maxDepth)
    }
}

/// The message types reachable from a root descriptor, reduced to what the depth check needs:
/// for each type, the fields to enter (those whose type can reach a recursive type).
///
/// `@unchecked Sendable`: built once and never changed; the tables live for the process (they are
/// read on every message, so they are plain C memory).
package final class WireSchema: @unchecked Sendable {
    /// The tables CWireScan walks (allocated once, for the life of the process).
    private let tables: UnsafeMutablePointer<CWireScanSchema>
    /// Every message-typed field, for `child(of:field:)`.
    private let all: [[(number: UInt32, node: Int)]]
    package let root = 0

    package init(root descriptor: UnsafePointer<ProtobufCMessageDescriptor>) {
        var index: [UnsafeRawPointer: Int] = [UnsafeRawPointer(descriptor): 0]
        var descriptors = [descriptor]
        var edges: [[(number: UInt32, node: Int)]] = []
        var next = 0
        while next < descriptors.count {
            let d = descriptors[next].pointee
            var out: [(number: UInt32, node: Int)] = []
            for i in 0..<Int(d.n_fields) {
                let field = d.fields[i]
                guard field.type == PROTOBUF_C_TYPE_MESSAGE, let child = field.descriptor else { continue }
                let key = UnsafeRawPointer(child)
                let childIndex = index[key] ?? {
                    descriptors.append(child.assumingMemoryBound(to: ProtobufCMessageDescriptor.self))
                    index[key] = descriptors.count - 1
                    return descriptors.count - 1
                }()
                out.append((field.id, childIndex))
            }
            edges.append(out)
            next += 1
        }
        // A type matters when it lies on a cycle or leads to one: only there can nesting grow
        // without bound. Everything else has the schema's own, small, depth.
        func reaches(_ from: Int, _ target: Int) -> Bool {
            var seen = Set<Int>()
            var stack = edges[from].map(\.node)
            while let n = stack.popLast() {
                if n == target { return true }
                if seen.insert(n).inserted { stack += edges[n].map(\.node) }
            }
            return false
        }
        let cyclic = (0..<edges.count).map { reaches($0, $0) }
        let matters = (0..<edges.count).map { n in cyclic[n] || (0..<edges.count).contains { cyclic[$0] && reaches(n, $0) } }
        // A level is a Struct or a ListValue, as a JSON value's depth: between two of them lie at
        // least two message fields (ListValue → Value → ListValue), 4 bytes. Should a schema
        // recurse elsewhere, its types count too, at 2 bytes a level.
        let names = descriptors.map { String(cString: $0.pointee.name) }
        let jsonLike = names.map { $0 == "google.protobuf.Struct" || $0 == "google.protobuf.ListValue" }
        func reachesAvoidingJSON(_ from: Int) -> Bool {
            var seen = Set<Int>()
            var stack = edges[from].map(\.node).filter { !jsonLike[$0] }
            while let n = stack.popLast() {
                if n == from { return true }
                if seen.insert(n).inserted { stack += edges[n].map(\.node).filter { !jsonLike[$0] } }
            }
            return false
        }
        let otherCycles = (0..<edges.count).map { !jsonLike[$0] && reachesAvoidingJSON($0) }
        let counted = (0..<edges.count).map { jsonLike[$0] || otherCycles[$0] }
        let enter = edges.map { $0.filter { matters[$0.node] } }
        let first = UnsafeMutablePointer<Int32>.allocate(capacity: enter.count + 1)
        let count = max(1, enter.reduce(0) { $0 + $1.count })
        let numbers = UnsafeMutablePointer<UInt32>.allocate(capacity: count)
        let children = UnsafeMutablePointer<Int32>.allocate(capacity: count)
        var offset: Int32 = 0
        for (n, fields) in enter.enumerated() {
            first[n] = offset
            for field in fields {
                numbers[Int(offset)] = field.number
                children[Int(offset)] = Int32(field.node)
                offset += 1
            }
        }
        first[enter.count] = offset
        let countedTable = UnsafeMutablePointer<UInt8>.allocate(capacity: counted.count)
        for (n, isCounted) in counted.enumerated() { countedTable[n] = isCounted ? 1 : 0 }
        tables = .allocate(capacity: 1)
        tables.initialize(to: CWireScanSchema(first: first, numbers: numbers, children: children, counted: countedTable,
                                              bytes_per_level: otherCycles.contains(true) ? 2 : 4))
        all = edges
    }

    package func child(of node: Int, field: UInt32) -> Int? {
        all[node].first { $0.number == field }?.node
    }

    /// Checks the message of type `node` in `base[range]`, at nesting `depth` (CWireScan walks it).
    package func check(_ base: UnsafePointer<UInt8>, _ range: Range<Int>, node: Int, depth: Int,
               limit: Int) throws(GRPCStatusError) {
        switch CWireScan_check(tables, base + range.lowerBound, base + range.upperBound, Int32(node), Int32(depth),
                               Int32(limit)) {
        case Int32(CWIRESCAN_OK): return
        case Int32(CWIRESCAN_TOO_DEEP):
            throw GRPCStatusError(.invalidArgument, "message nests deeper than \(limit) levels", reason: .tooDeep)
        default: throw WireReader.malformed
        }
    }
}

/// Reads protobuf wire format from `base[range]`, every read bounds-checked.
package struct WireReader {
    let base: UnsafePointer<UInt8>
    var offset: Int
    let end: Int

    package init(base: UnsafePointer<UInt8>, range: Range<Int>) {
        self.base = base
        offset = range.lowerBound
        end = range.upperBound
    }

    package var atEnd: Bool { offset >= end }

    static let malformed = GRPCStatusError(.invalidArgument, "StreamAccessLogsMessage does not decode (bad wire format)",
                                                   reason: .invalidProtobuf)

    @inline(__always)
    package mutating func varint() throws(GRPCStatusError) -> UInt64 {
        // Most varints here (tags, short lengths) are one byte.
        if offset < end, base[offset] < 0x80 {
            offset += 1
            return UInt64(base[offset - 1])
        }
        return try longVarint()
    }

    private mutating func longVarint() throws(GRPCStatusError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while offset < end && shift < 64 {
            let byte = base[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        throw Self.malformed
    }

    @inline(__always)
    package mutating func tag() throws(GRPCStatusError) -> (number: UInt32, wireType: UInt8) {
        let key = try varint()
        let number = key >> 3
        guard number > 0, number < 1 << 29 else { throw Self.malformed }
        return (UInt32(number), UInt8(key & 7))
    }

    /// A length-delimited field's bytes (the reader moves past them).
    @inline(__always)
    package mutating func lengthDelimited() throws(GRPCStatusError) -> Range<Int> {
        let length = try varint()
        guard length <= UInt64(end - offset) else { throw Self.malformed }
        let start = offset
        offset += Int(length)
        return start..<offset
    }

    /// Skips a field's value. Groups (wire types 3 and 4) are not in proto3 and are refused.
    @inline(__always)
    package mutating func skip(_ wireType: UInt8) throws(GRPCStatusError) {
        switch wireType {
        case 0: _ = try varint()
        case 1: try advance(8)
        case 2: _ = try lengthDelimited()
        case 5: try advance(4)
        default: throw Self.malformed
        }
    }

    @inline(__always)
    private mutating func advance(_ count: Int) throws(GRPCStatusError) {
        guard end - offset >= count else { throw Self.malformed }
        offset += count
    }
}
