import CProtobufC

/// An entry's `log_entry` field (field 1 of HTTPAccessLogEntries and TCPAccessLogEntries): the
/// "line" of `format=als`, which `ReplicaFrames` (ALSTapFormats) frames for alstap peers.
enum LogEntryField {
    /// Appends the field for `message`, re-packed by protobuf-c.
    static func append(_ message: UnsafePointer<ProtobufCMessage>, to out: ByteWriter) {
        let size = protobuf_c_message_get_packed_size(message)
        out.append(0x0A)
        ProtobufWire.appendVarint(UInt64(size), to: out)
        ProtobufWire.appendPacked(message, size: size, to: out)
    }

    /// Appends the field around an entry's bytes as received.
    static func append(_ bytes: UnsafeRawBufferPointer, to out: ByteWriter) {
        out.append(0x0A)
        ProtobufWire.appendVarint(UInt64(bytes.count), to: out)
        out.append(bytes)
    }
}

/// Writing protobuf's base-128 varints.
public enum ProtobufWire {
    public static func appendVarint(_ value: UInt64, to out: ByteWriter) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// Appends `message` packed by protobuf-c (a built message, for the replay ring and relays);
    /// `size`: its packed size, when the caller computed it already.
    package static func appendPacked(_ message: UnsafeRawPointer, size: Int? = nil, to out: ByteWriter) {
        let message = message.assumingMemoryBound(to: ProtobufCMessage.self)
        out.reserve(size ?? protobuf_c_message_get_packed_size(message))
        out.advance(by: protobuf_c_message_pack(message, out.base + out.count))
    }

    public static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var v = value
        while v >= 0x80 {
            v >>= 7
            size += 1
        }
        return size
    }
}
