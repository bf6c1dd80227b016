import CEnvoyProtos
import CProtobufArena

/// `--redact-header` in the ALS bytes alstap sends on (a capture, the replica format): an
/// entry with a redacted header has its values replaced by `[redacted]` in the unpacked
/// message, which is then packed again instead of forwarded as received, so no secret leaves
/// in a file a user downloads. Entries without one are forwarded byte for byte.
enum ALSRedaction {
    /// `[redacted]` as a C string for the unpacked message to point at, laid out as an arena
    /// string (its header in front, so `CProtobufArena_string_length` reads it like any other):
    /// never freed (protobuf-c frees nothing of an arena message one by one).
    nonisolated(unsafe) private static let value: UnsafeMutablePointer<CChar> = {
        let bytes = Array(JSONLineEncoder.redactedValue) + [0]
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 8 + bytes.count, alignment: 8)
        raw.storeBytes(of: CProtobufArenaHeader(size: UInt32(bytes.count), magic: CPROTOBUFARENA_MAGIC),
                       as: CProtobufArenaHeader.self)
        let string = (raw + 8).bindMemory(to: CChar.self, capacity: bytes.count)
        for (i, byte) in bytes.enumerated() { string[i] = CChar(bitPattern: byte) }
        return string
    }()

    /// Replaces the values of `entry`'s redacted request headers, response headers and trailers;
    /// true when it replaced any.
    static func redact(_ entry: UnsafeMutablePointer<CHTTPEntry>, names: [[UInt8]]) -> Bool {
        guard !names.isEmpty else { return false }
        var changed = false
        if let request = entry.pointee.request {
            changed = redact(request.pointee.request_headers, count: request.pointee.n_request_headers, names) || changed
        }
        if let response = entry.pointee.response {
            changed = redact(response.pointee.response_headers, count: response.pointee.n_response_headers, names) || changed
            changed = redact(response.pointee.response_trailers, count: response.pointee.n_response_trailers, names) || changed
        }
        return changed
    }

    private static func redact<Entry: KeyValueEntry>(_ entries: UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>?,
                                                       count: Int, _ names: [[UInt8]]) -> Bool {
        guard count > 0, let entries else { return false }
        var changed = false
        for i in 0..<count {
            guard let entry = entries[i], let key = entry.pointee.key, JSONLineEncoder.isRedacted(key, names) else { continue }
            entry.pointee.value = value
            changed = true
        }
        return changed
    }
}
