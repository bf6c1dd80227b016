import ALSTapALS

/// The state of one StreamAccessLogs call on an HTTP/2 stream. Loop-confined.
final class ALSStream {
    static let path = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
    /// The empty StreamAccessLogsResponse as one gRPC message: flag 0, length 0.
    static let emptyResponse: [UInt8] = [0, 0, 0, 0, 0]

    var deframer: GRPCDeframer
    /// The Envoy that opened the stream; set by the first message's Identifier.
    var reporter = Reporter()
    /// Set once the response is under way; later request bytes are ignored.
    var answered = false
    var status = GRPCStatusError(.ok, "")
    var responseBytesSent = 0
    /// The deframer's partial bytes as last counted in `Counters.bufferedMessageBytes`.
    var bufferedCounted = 0

    init(maxMessageBytes: Int) {
        deframer = GRPCDeframer(maxMessageBytes: maxMessageBytes)
    }

    /// Headers of a Trailers-Only response, which ends the call with `status` at once.
    static func trailersOnly(_ status: GRPCStatusError) -> [(String, String)] {
        [(":status", "200"), ("content-type", "application/grpc"),
         ("grpc-status", String(status.code.rawValue)), ("grpc-message", percentEncoded(status.message))]
    }

    /// grpc-message is percent-encoded (gRPC over HTTP/2 spec): bytes outside printable ASCII and '%'.
    static func percentEncoded(_ message: String) -> String {
        var out = ""
        for byte in message.utf8 {
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
