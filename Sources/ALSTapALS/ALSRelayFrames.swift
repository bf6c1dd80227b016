import CProtobufC

/// `format=als`: a tap's matching entries re-emitted as gRPC-framed `StreamAccessLogsMessage`s,
/// the form alstap replicas use to feed a cluster-scope tap (the receiving replica decodes them
/// exactly as it decodes Envoy's stream). Notices travel as frames with flag 0x80 (as gRPC-Web
/// marks its trailers) carrying the JSON notice line.
///
/// Each entry's "line" is its `log_entry` field (tag, length, the entry re-packed by protobuf-c),
/// so a subscriber's selection of entries is a run of slices behind one small header.
public enum ALSRelayFrames {
    /// The frame flag of a notice.
    public static let noticeFlag: UInt8 = 0x80

    /// Appends `log_entry` (field 1 of HTTPAccessLogEntries and TCPAccessLogEntries) for `message`.
    static func appendLogEntry(_ message: UnsafePointer<ProtobufCMessage>, to out: ByteWriter) {
        let size = protobuf_c_message_get_packed_size(message)
        out.append(0x0A)
        appendVarint(UInt64(size), to: out)
        out.reserve(size)
        let written = protobuf_c_message_pack(message, out.base + out.count)
        out.advance(by: written)
    }

    /// Appends `log_entry` around an entry's bytes as received.
    static func appendLogEntry(_ bytes: UnsafeRawBufferPointer, to out: ByteWriter) {
        out.append(0x0A)
        appendVarint(UInt64(bytes.count), to: out)
        out.append(bytes)
    }

    /// The gRPC prefix and the message fields that go before `entryBytes` bytes of `log_entry`
    /// fields: `identifier` (field 1), then `http_logs` (2) or `tcp_logs` (3).
    public static func header(identifier: SharedBytes?, isTCP: Bool, entryBytes: Int) -> SharedBytes {
        let out = ByteWriter(capacity: 64 + (identifier?.count ?? 0))
        let identifierField = identifier.map { 1 + varintSize(UInt64($0.count)) + $0.count } ?? 0
        let logsField = 1 + varintSize(UInt64(entryBytes)) + entryBytes
        appendPrefix(flag: 0, length: identifierField + logsField, to: out)
        if let identifier {
            out.append(0x0A)
            appendVarint(UInt64(identifier.count), to: out)
            out.append(identifier.bytes)
        }
        out.append(isTCP ? 0x1A : 0x12)
        appendVarint(UInt64(entryBytes), to: out)
        return out.take()
    }

    /// A notice frame around one JSON notice (without its newline).
    public static func notice(json: String) -> SharedBytes {
        let out = ByteWriter(capacity: 64 + json.utf8.count)
        appendPrefix(flag: noticeFlag, length: json.utf8.count, to: out)
        out.append(Array(json.utf8))
        return out.take()
    }

    private static func appendPrefix(flag: UInt8, length: Int, to out: ByteWriter) {
        out.append(flag)
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: length >> shift)) }
    }

    private static func appendVarint(_ value: UInt64, to out: ByteWriter) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    private static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var v = value
        while v >= 0x80 {
            v >>= 7
            size += 1
        }
        return size
    }
}
