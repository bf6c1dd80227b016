/// Writes protobuf wire format into a `ByteWriter`: scalar fields, and nested messages whose
/// length prefix is filled in when they end (one byte is kept for it; a longer message moves
/// its bytes up, which is rare: most nested messages here are under 128 bytes).
package struct ProtoWriter {
    package let out: ByteWriter

    package init(_ out: ByteWriter) {
        self.out = out
    }

    @inline(__always)
    package func tag(_ field: UInt32, _ wireType: UInt8) {
        ProtobufWire.appendVarint(UInt64(field) << 3 | UInt64(wireType), to: out)
    }

    package func varint(_ field: UInt32, _ value: UInt64) {
        tag(field, 0)
        ProtobufWire.appendVarint(value, to: out)
    }

    package func bool(_ field: UInt32) { varint(field, 1) }

    package func bytes(_ field: UInt32, _ bytes: UnsafeBufferPointer<UInt8>) {
        tag(field, 2)
        ProtobufWire.appendVarint(UInt64(bytes.count), to: out)
        out.append(UnsafeRawBufferPointer(bytes))
    }

    package func bytes(_ field: UInt32, _ text: StaticString) {
        bytes(field, UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Starts a nested message (or any length-delimited field written piecewise); returns the
    /// mark `end` takes.
    package func begin(_ field: UInt32) -> Int {
        tag(field, 2)
        out.append(0)
        return out.count
    }

    /// Ends the field `begin` started, writing its length.
    package func end(_ start: Int) {
        let length = out.count - start
        let size = ProtobufWire.varintSize(UInt64(length))
        if size > 1 {
            out.reserve(size - 1)
            (out.base + start + size - 1).update(from: out.base + start, count: length)
            out.advance(by: size - 1)
        }
        var v = UInt64(length)
        var at = start - 1
        while v >= 0x80 {
            out.base[at] = UInt8(truncatingIfNeeded: v) | 0x80
            v >>= 7
            at += 1
        }
        out.base[at] = UInt8(v)
    }

    /// A nested message written by `body`.
    package func message(_ field: UInt32, _ body: () -> Void) {
        let start = begin(field)
        body()
        end(start)
    }
}
