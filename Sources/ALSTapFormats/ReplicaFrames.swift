import ALSTapALS

/// `format=als`, the replica format: a tap's matching entries re-emitted as gRPC-framed
/// `StreamAccessLogsMessage`s, which alstap replicas use to feed a cluster-scope tap (the
/// receiving replica decodes them exactly as it decodes Envoy's stream). Notices travel as
/// frames with flag 0x80 (as gRPC-Web marks its trailers) carrying the JSON notice.
///
/// The decoder gives each entry's "line" as its `log_entry` field (tag, length, bytes), so a
/// subscriber's selection of entries is a run of slices behind one small `header`.
public enum ReplicaFrames {
    /// The frame flag of a notice (`GRPCDeframer` accepts it from peers only).
    public static let noticeFlag = GRPCDeframer.noticeFlag

    /// The gRPC prefix and the message fields that go before `entryBytes` bytes of `log_entry`
    /// fields: `identifier` (field 1), then `http_logs` (2) or `tcp_logs` (3). A capture record
    /// (`receivedMicros` set) has the receive time between the prefix and the message.
    public static func header(identifier: SharedBytes?, isTCP: Bool, entryBytes: Int,
                              receivedMicros: Int64? = nil) -> SharedBytes {
        let out = ByteWriter(capacity: 64 + (identifier?.count ?? 0))
        let identifierField = identifier.map { 1 + ProtobufWire.varintSize(UInt64($0.count)) + $0.count } ?? 0
        let logsField = 1 + ProtobufWire.varintSize(UInt64(entryBytes)) + entryBytes
        let time = receivedMicros == nil ? 0 : CaptureFile.timeBytes
        out.appendGRPCPrefix(flag: 0, length: time + identifierField + logsField)
        if let receivedMicros { CaptureFile.appendTime(receivedMicros, to: out) }
        if let identifier {
            out.append(0x0A)
            ProtobufWire.appendVarint(UInt64(identifier.count), to: out)
            out.append(identifier.bytes)
        }
        out.append(isTCP ? 0x1A : 0x12)
        ProtobufWire.appendVarint(UInt64(entryBytes), to: out)
        return out.take()
    }

    /// A notice frame around one JSON notice (without its newline).
    public static func notice(json: String) -> SharedBytes {
        let out = ByteWriter(capacity: 64 + json.utf8.count)
        out.appendGRPCPrefix(flag: noticeFlag, length: json.utf8.count)
        out.append(Array(json.utf8))
        return out.take()
    }
}
