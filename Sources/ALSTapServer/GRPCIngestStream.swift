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

/// The transport's state of one gRPC ingest call on an HTTP/2 stream. Loop-confined.
final class GRPCIngestStream {
    let call: any IngestCall
    var deframer: GRPCDeframer
    /// Set once the response is under way; later request bytes are ignored.
    var answered = false
    var status = GRPCStatusError(.ok, "")
    /// The response message with its gRPC prefix (empty until the request stream ended well).
    var response = BodyCursor([])
    /// The deframer's partial bytes as last counted in `Counters.bufferedMessageBytes`.
    var bufferedCounted = 0

    init(call: any IngestCall, maxMessageBytes: Int) {
        self.call = call
        deframer = GRPCDeframer(maxMessageBytes: maxMessageBytes)
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
