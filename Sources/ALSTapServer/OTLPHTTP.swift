import ALSTapALS
import ALSTapHTTP1
import ALSTapMetrics

/// OTLP/HTTP on the ingest listener: `POST /v1/logs` carrying a protobuf ExportLogsServiceRequest
/// (Envoy's `http_service` exporter sends it chunked), answered as the OTLP specification says:
/// 200 with an ExportLogsServiceResponse, 400 with a google.rpc.Status for a body that does not
/// decode, 415 for another content type (OTLP's JSON encoding included), 413 past the message bound.
enum OTLPHTTP {
    static let path = "/v1/logs"

    enum Decision {
        /// Read the body, then `answer` it.
        case readBody(RequestBodyReader)
        /// Answer now (and close: the body, if any, is not read).
        case refuse(status: Int, reason: String, message: String)
    }

    /// Whether `head` is an OTLP/HTTP request, and what to do with it; nil for any other request.
    static func decide(_ head: HTTP1RequestHead, config: ServerConfig) -> Decision? {
        guard head.target.split(separator: "?", maxSplits: 1).first.map(String.init) == path else { return nil }
        guard head.method == "POST" else { return .refuse(status: 405, reason: "Method Not Allowed", message: "POST \(path) only") }
        if let token = config.alsToken, !constantTimeEquals(head.header("authorization") ?? "", "Bearer " + token) {
            return .refuse(status: 401, reason: "Unauthorized", message: "missing or wrong bearer token")
        }
        let contentType = (head.header("content-type") ?? "").split(separator: ";").first.map { $0.trimmingSpaces().lowercased() }
        guard contentType == "application/x-protobuf" else {
            return .refuse(status: 415, reason: "Unsupported Media Type",
                           message: "alstap reads OTLP/HTTP as application/x-protobuf (not JSON)")
        }
        if let encoding = head.header("content-encoding"), encoding.lowercased() != "identity" {
            return .refuse(status: 415, reason: "Unsupported Media Type", message: "content-encoding \(encoding) is not accepted")
        }
        let limit = config.maxMessageBytes
        if HTTP1RequestParser.isChunkedOnly(head) { return .readBody(RequestBodyReader(.chunked, limit: limit)) }
        switch HTTP1RequestParser.bodyFraming(of: head) {
        case .noBody: return .readBody(RequestBodyReader(.length(0), limit: limit))
        case .contentLength(let length) where length <= limit: return .readBody(RequestBodyReader(.length(length), limit: limit))
        case .contentLength: return tooLarge(limit)
        case .transferEncoded: return .refuse(status: 400, reason: "Bad Request", message: "only chunked transfer-encoding is read")
        case .malformed(let reason): return .refuse(status: 400, reason: "Bad Request", message: reason)
        }
    }

    static func tooLarge(_ limit: Int) -> Decision {
        .refuse(status: 413, reason: "Content Too Large", message: "request body over \(limit) bytes (--max-message-bytes)")
    }

    /// The response to a whole body (keep-alive unless `close`).
    static func answer(_ body: [UInt8], ingest: OTLPIngest, counters: Counters, close: Bool) -> [UInt8] {
        counters.add(.otlpExportsHTTP)
        let result: Result<[UInt8], GRPCStatusError> = body.withUnsafeBytes { bytes in
            do throws(GRPCStatusError) { return .success(try ingest.export(bytes)) } catch { return .failure(error) }
        }
        switch result {
        case .success(let response):
            return HTTP1Response.bytes(status: 200, reason: "OK", contentType: "application/x-protobuf", body: response,
                                       close: close)
        case .failure(let error):
            if let counter = Counters.Name(refusal: error.reason) { counters.add(counter) }
            return refusal(status: 400, reason: "Bad Request", code: error.code.rawValue, message: error.message, close: close)
        }
    }

    /// An error answer: a google.rpc.Status (code 1, message 2) as OTLP/HTTP wants.
    static func refusal(status: Int, reason: String, code: Int = 3, message: String, close: Bool) -> [UInt8] {
        let out = ByteWriter(capacity: 256)
        let proto = ProtoWriter(out)
        proto.varint(1, UInt64(code))
        var message = message
        message.withUTF8 { proto.bytes(2, $0) }
        return HTTP1Response.bytes(status: status, reason: reason, contentType: "application/x-protobuf",
                                   body: Array(out.bytes), close: close)
    }
}
