/// gRPC status codes alstap answers with (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
public enum GRPCStatusCode: Int, Sendable {
    case ok = 0
    case invalidArgument = 3
    case resourceExhausted = 8
    case unimplemented = 12
    case `internal` = 13
    case unavailable = 14
}

/// Why an ALS stream ended badly; mapped to `grpc-status` / `grpc-message` at the HTTP/2 edge.
public struct GRPCStatusError: Error, Equatable, Sendable, CustomStringConvertible {
    public let code: GRPCStatusCode
    public let message: String

    public init(_ code: GRPCStatusCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "grpc-status \(code.rawValue): \(message)" }
}
