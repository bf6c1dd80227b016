#if canImport(Glibc)
import Glibc
#endif

/// A `fields=` mask: which members of alstap's JSON lines a subscriber keeps (`type` and `time`
/// always), parsed once into a small tree of keys, and the projection of a line onto it.
///
/// A projection copies the kept members' bytes as the line has them, in its order; an object
/// kept in part holds its selected members only, and is left out when none is there. A pair
/// record (`"type":"pair"`, ahead of its other members) also keeps `paired`, `requestId` and
/// `overheadMs`, takes the mask on its `request`, `source` and `destination`, and the whole mask
/// on each half's line (`outbound`, `inbound`, each element of `attempts`).
public final class FieldMask: Sendable, Hashable {
    public struct Error: Swift.Error, Equatable, Sendable {
        public let message: String
    }

    public static let maxPaths = 64
    public static let maxPathBytes = 256

    /// The paths, normalized: those a shorter one covers and those always kept (`time`, `type`,
    /// and a pair record's) left out, sorted, joined by commas. Masks that mean the same have
    /// the same `canonical` (`""`: `type` and `time` only).
    public let canonical: String
    /// The top-level members the mask keeps something of (`time` and `type` always).
    public let topLevel: JSONMembers
    /// Every node's members, each node's contiguous.
    private let members: [Member]
    /// The members' keys, JSON-escaped as lines have them between the quotes.
    private let keys: [UInt8]
    /// The roots: a line, a pair record, a half's line inside a pair record.
    private let line: Range<Int>, pairRecord: Range<Int>, half: Range<Int>

    /// `text`: comma-separated dotted paths of `schema` (spaces around a path are ignored). A
    /// map's path takes a key: the rest of the path, dots included (`customTags.istio.mesh_id`).
    public init(parsing text: String) throws(Error) {
        guard text.contains(where: { $0 != " " }) else {
            throw Error(message: "fields is empty: name one or more fields, e.g. fields=request.path,response.code")
        }
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
        guard items.count <= Self.maxPaths else {
            throw Error(message: "\(items.count) fields: at most \(Self.maxPaths)")
        }
        var paths: [[String]] = []
        for item in items {
            var path = item
            while path.first == " " { path.removeFirst() }
            while path.last == " " { path.removeLast() }
            paths.append(try Self.resolve(path))
        }
        // Sorted, a path's extensions follow it at once: comparing with the last kept path
        // drops duplicates and covered paths alike.
        paths.sort { $0.lexicographicallyPrecedes($1) }
        var kept: [[String]] = []
        for path in paths where !(path.count == 1 && Self.alwaysKept.contains(path[0])) {
            if let last = kept.last, path.starts(with: last) { continue }
            kept.append(path)
        }
        canonical = kept.map { $0.joined(separator: ".") }.joined(separator: ",")
        topLevel = JSONMembers(bits: kept.reduce(UInt64(0b11)) { bits, path in
            bits | (JSONMember.allCases.first { "\($0)" == path[0] }.map { 1 << UInt64($0.rawValue) } ?? 0)
        })

        var builder = Builder()
        let root = builder.level(kept[...], depth: 0)
        let time = builder.member("time", .whole), type = builder.member("type", .whole)
        let lineType = builder.member("type", .type)
        let pairs = ["paired", "requestId", "overheadMs"].map { builder.member($0, .whole) }
            + [builder.member("outbound", .line), builder.member("inbound", .line), builder.member("attempts", .lines)]
        line = builder.node([time, lineType] + root)
        half = builder.node([time, type] + root)
        pairRecord = builder.node([type] + pairs + root)
        members = builder.members
        keys = Array(builder.keys.bytes)
    }

    /// Appends `line` (one JSON object, as `JSONLineEncoder` or `PairRecordWriter` wrote it)
    /// projected onto the mask, then `\n`. Input that is not one JSON object (truncated,
    /// malformed, followed by more) gives `{}\n`; values copied or skipped whole are checked only
    /// for closed strings and balanced brackets. Where the mask expects an object (an array for
    /// `attempts`) and the line has another kind of value, the member is left out.
    ///
    /// `members`: where the line's top-level members start (`MemberIndex`; offsets from `lineOffset`,
    /// the line's own offset in its buffer): members the mask does not keep are then skipped
    /// without being read, and the result is the same.
    public func project(_ line: UnsafeRawBufferPointer, members memberOffsets: ArraySlice<UInt32>? = nil, lineOffset: Int = 0,
                        into out: ByteWriter) {
        let mark = out.count
        members.withUnsafeBufferPointer { members in
            keys.withUnsafeBufferPointer { keys in
                guard let start = line.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
                    out.append("{}")
                    return
                }
                var projector = Projector(members: members, keys: keys.baseAddress!, pairRecord: pairRecord, half: half,
                                          out: out, p: start, end: start + line.count)
                do throws(Malformed) {
                    if let memberOffsets {
                        try memberOffsets.withUnsafeBufferPointer { offsets throws(Malformed) in
                            try projector.indexedLine(self.line, offsets, lineOffset: lineOffset)
                        }
                    } else {
                        try projector.line(self.line)
                    }
                } catch {
                    out.truncate(to: mark)
                    out.append("{}")
                }
            }
        }
        out.append(UInt8(ascii: "\n"))
    }

    public static func == (a: FieldMask, b: FieldMask) -> Bool { a.canonical == b.canonical }
    public func hash(into hasher: inout Hasher) { hasher.combine(canonical) }

    /// Kept whatever the mask: in a line, or in a pair record (where lines have none of them).
    private static let alwaysKept: Set<String> = ["time", "type", "paired", "requestId", "overheadMs"]

    /// The path's segments checked against `schema`; a map's key is one segment.
    private static func resolve(_ path: Substring) throws(Error) -> [String] {
        guard !path.isEmpty else { throw Error(message: "empty field (two commas in a row, or one at an end)") }
        guard path.utf8.count <= maxPathBytes else {
            throw Error(message: "field \"\(path.prefix(40))…\" is longer than \(maxPathBytes) bytes")
        }
        let segments = path.split(separator: ".", omittingEmptySubsequences: false)
        guard !segments.contains(where: \.isEmpty) else { throw Error(message: "empty segment in field \"\(path)\"") }
        var fields = schema
        var resolved: [String] = []
        for (i, segment) in segments.enumerated() {
            guard let field = fields.first(where: { $0.name == segment }) else {
                let parent = resolved.joined(separator: ".")
                let names = fields.map(\.name).joined(separator: ", ")
                let hint = parent.isEmpty ? "fields: \(names)"
                    : fields.isEmpty ? "\(parent) has no sub-fields" : "\(parent) has: \(names)"
                throw Error(message: "unknown field \"\(path)\" (\(hint))")
            }
            resolved.append(field.name)
            if field.isMap && i + 1 < segments.count {
                // Envoy logs header names lowercased: `request.headers.X-Foo` means `x-foo`.
                let key = segments[(i + 1)...].joined(separator: ".")
                return resolved + [field.name == "headers" || field.name == "trailers" ? key.lowercased() : key]
            }
            fields = field.fields
        }
        return resolved
    }
}

private struct Malformed: Error {}

/// One line's scan. Every read is checked against `end`. It recurses only where the mask
/// descends (a few levels); values it copies or skips are crossed in one loop, whatever their depth.
private struct Projector {
    let members: UnsafeBufferPointer<Member>
    let keys: UnsafePointer<UInt8>
    let pairRecord: Range<Int>, half: Range<Int>
    let out: ByteWriter
    var p: UnsafePointer<UInt8>
    var end: UnsafePointer<UInt8>
    /// In `indexedLine`: each top-level member's value ends at `end`, without a scan.
    var indexed = false
    /// Objects entered (0: a top-level member of an indexed line).
    var depth = 0

    mutating func line(_ root: Range<Int>) throws(Malformed) {
        skipSpace()
        guard try peek() == UInt8(ascii: "{") else { throw Malformed() }
        _ = try object(root)
        skipSpace()
        guard p == end else { throw Malformed() }
    }

    /// A line `{…}\n` whose top-level members start at `offsets` (from `lineOffset`): each member
    /// is read within its own bytes, those the mask does not keep not at all.
    mutating func indexedLine(_ root: Range<Int>, _ offsets: UnsafeBufferPointer<UInt32>, lineOffset: Int) throws(Malformed) {
        let start = p
        guard end - start >= 3, end[-1] == UInt8(ascii: "\n"), end[-2] == UInt8(ascii: "}"), start.pointee == UInt8(ascii: "{")
        else { throw Malformed() }
        let closing = end - 2
        var node = root
        var kept = false
        indexed = true
        out.append(UInt8(ascii: "{"))
        for i in offsets.indices {
            let from = Int(offsets[i]) - lineOffset
            let to = i + 1 < offsets.count ? Int(offsets[i + 1]) - lineOffset : closing - start
            guard from >= 1, from < to, to <= closing - start else { throw Malformed() }
            p = start + from
            end = start + to
            if p.pointee == UInt8(ascii: ",") { p += 1 }
            try member(of: &node, kept: &kept)
            guard p == end else { throw Malformed() }
        }
        out.append(UInt8(ascii: "}"))
        p = closing + 2
        end = p
    }

    @inline(__always)
    func peek() throws(Malformed) -> UInt8 {
        guard p < end else { throw Malformed() }
        return p.pointee
    }

    /// alstap writes none, but JSON allows it.
    @inline(__always)
    mutating func skipSpace() {
        while p < end, p.pointee <= 0x20, p.pointee == 0x20 || p.pointee == 0x0A || p.pointee == 0x0D || p.pointee == 0x09 {
            p += 1
        }
    }

    /// Projects the object at `p` onto `node`, writing `{…}`; returns whether it kept a member.
    mutating func object(_ node: Range<Int>) throws(Malformed) -> Bool {
        var node = node
        var kept = false
        depth += 1
        defer { depth -= 1 }
        p += 1
        out.append(UInt8(ascii: "{"))
        skipSpace()
        if try peek() == UInt8(ascii: "}") {
            p += 1
        } else {
            repeat { try member(of: &node, kept: &kept) } while try !next(closing: UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
        return kept
    }

    /// After a member or an element: true past the closing bracket, false past a comma.
    private mutating func next(closing: UInt8) throws(Malformed) -> Bool {
        skipSpace()
        let byte = try peek()
        p += 1
        if byte == closing { return true }
        guard byte == UInt8(ascii: ",") else { throw Malformed() }
        skipSpace()
        return false
    }

    private mutating func member(of node: inout Range<Int>, kept: inout Bool) throws(Malformed) {
        guard try peek() == UInt8(ascii: "\"") else { throw Malformed() }
        let keyStart = p
        try skipString()
        let keyEnd = p
        skipSpace()
        guard try peek() == UInt8(ascii: ":") else { throw Malformed() }
        p += 1
        skipSpace()
        let memberEnd = end
        guard let index = find(keyStart + 1, count: keyEnd - keyStart - 2, in: node) else {
            if indexed && depth == 0 { p = memberEnd; return }
            return try skipValue()
        }
        let member = members[index]
        let mark = out.count
        if kept { out.append(UInt8(ascii: ",")) }
        switch member.kind {
        case .whole, .type:
            let value = p
            if indexed && depth == 0 { p = memberEnd } else { try skipValue() }
            out.append(keyStart, count: p - keyStart)
            kept = true
            let pair: StaticString = "\"pair\""
            if member.kind == .type && p - value == 6 && memcmp(value, pair.utf8Start, 6) == 0 { node = pairRecord }
        case .object, .line, .lines:
            // Of another kind than the mask expects: left out.
            guard try peek() == (member.kind == .lines ? UInt8(ascii: "[") : UInt8(ascii: "{")) else {
                out.truncate(to: mark)
                return try skipValue()
            }
            out.append(keyStart, count: keyEnd - keyStart)
            out.append(UInt8(ascii: ":"))
            if member.kind == .lines {
                try lines()
                kept = true
            } else if try object(member.kind == .line ? half : member.children) {
                kept = true
            } else {
                out.truncate(to: mark)
            }
        }
    }

    /// A length check and a byte compare per member of the node (a handful).
    @inline(__always)
    private func find(_ key: UnsafePointer<UInt8>, count: Int, in node: Range<Int>) -> Int? {
        for i in node where members[i].key.count == count && keys[members[i].key.lowerBound] == key.pointee
            && memcmp(keys + members[i].key.lowerBound, key, count) == 0 {
            return i
        }
        return nil
    }

    /// `attempts`: each object projected as a half's line (`{}` if it keeps nothing), anything else copied.
    private mutating func lines() throws(Malformed) {
        p += 1
        out.append(UInt8(ascii: "["))
        skipSpace()
        if try peek() == UInt8(ascii: "]") {
            p += 1
        } else {
            var first = true
            repeat {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                if try peek() == UInt8(ascii: "{") {
                    _ = try object(half)
                } else {
                    let start = p
                    try skipValue()
                    out.append(start, count: p - start)
                }
            } while try !next(closing: UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "]"))
    }

    private mutating func skipValue() throws(Malformed) {
        switch try peek() {
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "{"), UInt8(ascii: "["): try skipContainer()
        default: try skipScalar()
        }
    }

    /// From the `"` at `p` past the string's end, 8 bytes at a time (a line's strings are short:
    /// cheaper than a memchr call each): the first `"` or `\` of a word ends the string, or skips
    /// the byte it escapes.
    @inline(__always)
    private mutating func skipString() throws(Malformed) {
        var q = p + 1
        while end - q >= 8 {
            let word = UInt64(littleEndian: UnsafeRawPointer(q).loadUnaligned(as: UInt64.self))
            let found = Self.zeroBytes(word ^ 0x2222_2222_2222_2222) | Self.zeroBytes(word ^ 0x5C5C_5C5C_5C5C_5C5C)
            if found == 0 { q += 8; continue }
            q += found.trailingZeroBitCount >> 3
            if q.pointee == UInt8(ascii: "\"") {
                p = q + 1
                return
            }
            q += 2
        }
        while q < end {
            if q.pointee == UInt8(ascii: "\"") {
                p = q + 1
                return
            }
            q += q.pointee == UInt8(ascii: "\\") ? 2 : 1
        }
        throw Malformed()
    }

    /// The high bit of each zero byte of `v`, exact up to the first (borrows only spill above it).
    @inline(__always)
    private static func zeroBytes(_ v: UInt64) -> UInt64 {
        (v &- 0x0101_0101_0101_0101) & ~v & 0x8080_8080_8080_8080
    }

    /// An object or array in one loop: strings skipped, brackets counted, and the outermost 64
    /// levels checked to close with their own kind (a bit each).
    private mutating func skipContainer() throws(Malformed) {
        var nesting = 0
        var objects: UInt64 = 0
        repeat {
            let byte = try peek()
            switch byte {
            case UInt8(ascii: "\""):
                try skipString()
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                if nesting < 64 { objects = objects << 1 | (byte == UInt8(ascii: "{") ? 1 : 0) }
                nesting += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                nesting -= 1
                if nesting < 64 {
                    guard objects & 1 == (byte == UInt8(ascii: "}") ? 1 : 0) else { throw Malformed() }
                    objects >>= 1
                }
            default: break
            }
            p += 1
        } while nesting > 0
    }

    /// A number, `true`, `false` or `null`: a run of the bytes those are made of.
    private mutating func skipScalar() throws(Malformed) {
        let start = p
        while p < end {
            let byte = p.pointee
            let letter = byte | 0x20
            guard (byte >= 0x30 && byte <= 0x39) || (letter >= 0x61 && letter <= 0x7A) || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") else { break }
            p += 1
        }
        guard p > start else { throw Malformed() }
    }
}
