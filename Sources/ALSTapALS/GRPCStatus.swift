/// gRPC status codes alstap answers with (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
public enum GRPCStatusCode: Int, Sendable {
    case ok = 0
    case invalidArgument = 3
    case resourceExhausted = 8
    case unimplemented = 12
    case `internal` = 13
    case unavailable = 14
    case unauthenticated = 16
}

/// Why an ALS stream ended badly; mapped to `grpc-status` / `grpc-message` at the HTTP/2 edge.
public struct GRPCStatusError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Which check refused the input, for the counters (one per reason on /metrics).
    public enum Reason: String, Sendable, CaseIterable {
        case none
        /// The bytes are not a valid message.
        case invalidProtobuf = "invalid_protobuf"
        /// Sub-messages nest deeper than `--max-nesting-depth`.
        case tooDeep = "too_deep"
        /// More entries in one message than `--max-entries-per-message`.
        case tooManyEntries = "too_many_entries"
        /// The message would unpack into more than `--max-unpacked-bytes`.
        case unpackedTooLarge = "unpacked_too_large"
        /// Its lines would take more than `--max-unpacked-bytes` in one format.
        case encodedTooLarge = "encoded_too_large"
        /// A gRPC message over `--max-message-bytes`.
        case messageTooLarge = "message_too_large"
        /// Partial messages of every stream together over `--max-buffered-message-bytes`.
        case bufferedTooLarge = "buffered_too_large"
        case compressed
        case truncated
    }

    public let code: GRPCStatusCode
    public let message: String
    public let reason: Reason

    public init(_ code: GRPCStatusCode, _ message: String, reason: Reason = .none) {
        self.code = code
        self.message = message
        self.reason = reason
    }

    public var description: String { "grpc-status \(code.rawValue): \(message)" }
}
