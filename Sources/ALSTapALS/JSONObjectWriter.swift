/// Writes one JSON object's members, with commas, into a `ByteWriter`.
/// An object that ends up empty when nested is removed again, so absent data leaves no `{}`.
struct JSONObjectWriter {
    let out: ByteWriter
    private(set) var isEmpty = true
    /// A line's top-level object records where each of its members starts (see `MemberIndex`).
    /// Unmanaged: every writer carries it, and a strong reference would cost retains per object
    /// on the encoder's path; the decoder owns the marks for the writer's whole life.
    var members: Unmanaged<MemberMarks>?

    init(_ out: ByteWriter) {
        self.out = out
        out.append(UInt8(ascii: "{"))
    }

    func close() { out.append(UInt8(ascii: "}")) }

    @inline(__always)
    private func mark() {
        members?._withUnsafeGuaranteedRef { $0.offsets.append(UInt32(out.count)) }
    }

    /// Marks the object non-empty, for members spliced in as pre-encoded bytes.
    mutating func markNonEmpty() { isEmpty = false }

    @inline(__always)
    mutating func key(_ name: StaticString) {
        mark()
        out.appendKey(name, comma: !isEmpty)
        isEmpty = false
    }

    /// A key that comes from the data (header names, tag names).
    mutating func key(cString name: UnsafePointer<CChar>) {
        mark()
        if !isEmpty { out.append(UInt8(ascii: ",")) }
        isEmpty = false
        out.appendJSONString(name)
        out.append(UInt8(ascii: ":"))
    }

    mutating func string(_ name: StaticString, _ value: UnsafeMutablePointer<CChar>?) {
        guard let value = present(value) else { return }
        key(name)
        out.appendJSONString(value)
    }

    mutating func string(_ name: StaticString, bytes value: UnsafeBufferPointer<UInt8>?) {
        guard let value else { return }
        key(name)
        out.append(UInt8(ascii: "\""))
        out.appendEscaped(value, mode: .json)
        out.append(UInt8(ascii: "\""))
    }

    /// A number given as ASCII digits (a port in a cluster name); a string if not all digits.
    mutating func integer(_ name: StaticString, digits: UnsafeBufferPointer<UInt8>?) {
        guard let digits else { return }
        guard digits.count <= 18, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            string(name, bytes: digits)
            return
        }
        key(name)
        out.append(UnsafeRawBufferPointer(digits))
    }

    mutating func literal(_ name: StaticString, _ value: StaticString) {
        key(name)
        out.append(UInt8(ascii: "\""))
        out.append(value)
        out.append(UInt8(ascii: "\""))
    }

    mutating func number(_ name: StaticString, _ value: UInt64) {
        key(name)
        out.appendDecimal(value)
    }

    mutating func nonZero(_ name: StaticString, _ value: UInt64) {
        if value != 0 { number(name, value) }
    }

    /// Writes `"name":` and then the value; takes both back when `value` returns false.
    mutating func member(_ name: StaticString, _ value: (ByteWriter) -> Bool) {
        let mark = out.count
        let wasEmpty = isEmpty
        key(name)
        if !value(out) {
            out.truncate(to: mark)
            isEmpty = wasEmpty
            members?._withUnsafeGuaranteedRef { _ = $0.offsets.removeLast() }
        }
    }

    /// A nested object, left out when it would be empty.
    mutating func nested(_ name: StaticString, _ body: (inout JSONObjectWriter) -> Void) {
        member(name) { out in
            var inner = JSONObjectWriter(out)
            body(&inner)
            inner.close()
            return !inner.isEmpty
        }
    }

    mutating func address(_ name: StaticString, _ address: UnsafePointer<CAddress>?) {
        member(name) { out in
            out.append(UInt8(ascii: "\""))
            guard out.appendAddress(address, mode: .json) else { return false }
            out.append(UInt8(ascii: "\""))
            return true
        }
    }
}

/// Where the members of lines' top-level objects start, as the encoder writes them (offsets into
/// the batch's bytes, at a member's comma or, for the first, its quote): a field mask then skips
/// the members it does not keep without reading them. Written only for masked subscribers.
final class MemberMarks {
    var offsets: [UInt32] = []
    /// `offsets` index of each line's first member.
    var lineFirst: [UInt32] = []

    func removeAll() {
        offsets.removeAll(keepingCapacity: true)
        lineFirst.removeAll(keepingCapacity: true)
    }
}
