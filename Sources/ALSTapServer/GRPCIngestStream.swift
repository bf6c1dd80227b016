import ALSTapALS
import ALSTapHTTP1

/// A gRPC method alstap ingests entries from. Registered by its path (`IngestRegistry`); the
/// HTTP/2 transport routes each gRPC stream to the method it names, deframes the request
/// messages and answers; the method only turns messages into published batches.
protocol IngestMethod: AnyObject {
    /// `/package.Service/Method`.
    var path: String { get }
    /// The state of one new call (the sender's identity, say).
    func makeCall() -> any IngestCall
    /// A client-streaming method, whose calls last as long as their connection (Envoy's ALS);
    /// alstap ends those itself at `--max-stream-age` and on shutdown. Unary calls run to their end.
    var isStreaming: Bool { get }
}

/// One call of an ingest method, without transport: whole request messages in, one response
/// message out. Loop-confined.
protocol IngestCall: AnyObject {
    /// Takes one request message (a streaming method decodes and publishes it at once); throwing
    /// ends the call with that status.
    func receive(message: UnsafeRawBufferPointer) throws(GRPCStatusError)
    /// The request stream ended well: the response message (without its gRPC prefix), or the
    /// status that ends the call.
    func finish() throws(GRPCStatusError) -> [UInt8]
}

/// The ingest methods one loop serves, by path.
struct IngestRegistry {
    private var methods: [String: any IngestMethod] = [:]

    init(_ methods: [any IngestMethod]) {
        for method in methods { self.methods[method.path] = method }
    }

    func method(for path: String) -> (any IngestMethod)? { methods[path] }
}

/// `--max-stream-age`: when alstap ends an ingest connection's streaming calls on its own, and
/// then the connection, so that Envoy's next stream goes through the Service to any replica
/// (Envoy keeps a log stream for as long as its connection lives, so new replicas would
/// otherwise get no load). Each connection's age is the maximum give or take 10 %, so a mesh's
/// streams do not all reconnect at once.
struct StreamAge: Sendable {
    /// 0: calls never age.
    let maxNanos: UInt64
    static let jitter = 0.1

    /// When a connection whose first call opened at `openedAt` is due to end; `unit` is a random
    /// number in 0..<1.
    func deadline(openedAt: UInt64, unit: Double) -> UInt64 {
        guard maxNanos > 0 else { return .max }
        let factor = 1 - Self.jitter + 2 * Self.jitter * min(max(unit, 0), 1)
        return openedAt &+ UInt64(Double(maxNanos) * factor)
    }
}

/// The transport's state of one gRPC ingest call on an HTTP/2 stream. Loop-confined.
///
/// alstap ends a call itself (stream age, shutdown) only between two messages, with UNAVAILABLE,
/// on which Envoy opens a new stream for its next batch. The messages Envoy sent before that
/// status reached it are still decoded (`takesLateMessages`): ending a call loses no entry.
final class GRPCIngestStream {
    static let aged = GRPCStatusError(.unavailable, "alstap ended the stream at --max-stream-age; reconnect")
    static let shuttingDown = GRPCStatusError(.unavailable, "alstap is shutting down; reconnect")

    let call: any IngestCall
    /// Its method streams (alstap may end it between messages); unary calls run to their end.
    let isStreaming: Bool
    var deframer: GRPCDeframer
    /// Set once the response is under way; later request bytes are ignored (unless `takesLateMessages`).
    var answered = false
    var status = GRPCStatusError(.ok, "")
    /// The response message with its gRPC prefix (empty until the request stream ended well).
    var response = BodyCursor([])
    /// The deframer's partial bytes as last counted in `Counters.bufferedMessageBytes`.
    var bufferedCounted = 0
    /// The status alstap ends the call with at the next message boundary (aged, shutting down).
    private(set) var ending: GRPCStatusError?
    /// alstap ended the call: what the client sent before it saw the status is still decoded...
    var takesLateMessages = false
    /// ...for this long: a client that keeps the stream open after that is reset.
    static let lateMessagesNanos: UInt64 = 10_000_000_000
    /// When alstap ended the call.
    private(set) var endedAtNanos: UInt64 = 0

    init(call: any IngestCall, isStreaming: Bool, maxMessageBytes: Int) {
        self.call = call
        self.isStreaming = isStreaming
        deframer = GRPCDeframer(maxMessageBytes: maxMessageBytes)
    }

    /// Asks a streaming call to end with `status` at its next message boundary (the first ask wins).
    func endSoon(_ status: GRPCStatusError) {
        if isStreaming && ending == nil { ending = status }
    }

    /// The status to end the call with now, if it was asked to end and it is between messages
    /// (or `passedBoundary`: a message just completed; the one begun after it is taken late);
    /// the call then counts as answered and takes late messages. The caller sends the status.
    func dueEnd(now: UInt64, passedBoundary: Bool = false) -> GRPCStatusError? {
        guard !answered, let ending, passedBoundary || deframer.isAtMessageBoundary else { return nil }
        endedAtNanos = now
        answered = true
        takesLateMessages = true
        status = ending
        return ending
    }

    /// alstap ended the call long enough ago that a client still holding the stream open is to be reset.
    func lingers(now: UInt64) -> Bool {
        takesLateMessages && endedAtNanos != 0 && now >= endedAtNanos &+ Self.lateMessagesNanos
    }

    /// The request stream ended well and the call answered `message`: it is ready to send.
    func prepareResponse(_ message: [UInt8]) {
        let framed = ByteWriter(capacity: 5 + message.count)
        framed.appendGRPCPrefix(flag: 0, length: message.count)
        framed.append(message)
        response = BodyCursor(Array(framed.bytes))
    }

    /// Headers of a Trailers-Only response, which ends the call with `status` at once.
    static func trailersOnly(_ status: GRPCStatusError) -> [(String, String)] {
        [(":status", "200"), ("content-type", "application/grpc"),
         ("grpc-status", String(status.code.rawValue)), ("grpc-message", PercentEncoding.encode(status.message, keeping: .grpcMessage))]
    }
}
