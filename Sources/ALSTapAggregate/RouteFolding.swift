/// The route of a request without a route name: its path without the query, with every
/// segment that names one thing rather than a kind of thing folded to `{id}` — all digits
/// (`/orders/42`), a UUID (`8-4-4-4-12` hex digits), or 8 or more hex digits with at least one
/// digit among them (`/blobs/9f86d081884c7d65`). So `/users/42/orders/7` and `/users/9/orders/1`
/// are one route, `/users/{id}/orders/{id}`.
public enum RouteFolding {
    public static func fold(_ path: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(path.count)
        fold(path) { out.append(contentsOf: $0) }
        return out
    }

    /// The folded path in pieces, to `emit` (a group key is written without an array per entry).
    @inline(__always)
    static func fold(_ path: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) {
        let identifier: StaticString = "{id}"
        let slash: StaticString = "/"
        var end = path.count
        if let query = path.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) { end = query }
        var start = 0
        while start < end {
            var stop = start
            while stop < end && path[stop] != UInt8(ascii: "/") { stop += 1 }
            let segment = UnsafeRawBufferPointer(rebasing: path[start..<stop])
            if isIdentifier(segment) {
                emit(UnsafeRawBufferPointer(start: identifier.utf8Start, count: identifier.utf8CodeUnitCount))
            } else {
                emit(segment)
            }
            if stop < end { emit(UnsafeRawBufferPointer(start: slash.utf8Start, count: 1)) }
            start = stop + 1
        }
    }

    public static func fold(_ path: String) -> String {
        var copy = path
        return copy.withUTF8 { String(decoding: fold(UnsafeRawBufferPointer($0)), as: UTF8.self) }
    }

    static func isIdentifier(_ segment: UnsafeRawBufferPointer) -> Bool {
        guard !segment.isEmpty else { return false }
        func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        func isHex(_ b: UInt8) -> Bool {
            isDigit(b) || (b | 0x20 >= UInt8(ascii: "a") && b | 0x20 <= UInt8(ascii: "f"))
        }
        if segment.allSatisfy(isDigit) { return true }
        if segment.count == 36 {
            let dashes = [8, 13, 18, 23]
            if segment.indices.allSatisfy({ dashes.contains($0) ? segment[$0] == UInt8(ascii: "-") : isHex(segment[$0]) }) {
                return true
            }
        }
        return segment.count >= 8 && segment.allSatisfy(isHex) && segment.contains(where: isDigit)
    }
}
