import ALSTapALS
import ALSTapCore
import ALSTapMetrics
import ALSTapOTLP
import ALSTapSystem

/// OpenTelemetry's logs service: the unary gRPC `Export` (Envoy's `open_telemetry` access
/// logger, Istio's `envoyOtelAls`) and OTLP/HTTP's `POST /v1/logs` share `export`. Each request
/// becomes Envoy ALS messages (ALSTapOTLP), decoded and published like an ALS stream's, so
/// every consumer serves OTLP entries unchanged. Loop-confined.
final class OTLPIngest: IngestMethod {
    let path = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
    private unowned let context: LoopContext
    let isStreaming = false
    private let translator: OTLPTranslator
    /// Reporters by their Identifier's bytes: an Envoy sends one request per flush, and parsing its
    /// identity each time would cost more than its entries. Bounded in count and key size.
    private var reporters: [[UInt8]: Reporter] = [:]
    private static let maxReporters = 256
    private static let maxIdentifierBytes = 4096
    /// The message being published, as ALS bytes for the replay ring.
    private let packed = ByteWriter(capacity: 64 * 1024)

    init(context: LoopContext) {
        self.context = context
        translator = OTLPTranslator(limits: context.config.decodeLimits)
    }

    func makeCall() -> any IngestCall { Call(owner: self) }

    /// Publishes one ExportLogsServiceRequest; returns its ExportLogsServiceResponse. Throws when
    /// the request does not decode or is over a bound (nothing of it is published then).
    func export(_ payload: UnsafeRawBufferPointer) throws(GRPCStatusError) -> [UInt8] {
        let fanout = context.fanout
        let rejections = try translator.translate(payload) { message throws(GRPCStatusError) in
            let cacheable = message.identifier.count <= Self.maxIdentifierBytes
            let key = cacheable ? Array(message.identifier) : []
            var reporter = Reporter()
            let known = cacheable ? reporters[key] : nil
            if let known {
                reporter = known
            } else {
                try translator.attachIdentifier(message)  // the decoder reads the reporter from it
            }
            let batch = try context.decoder.encode(built: message.message, reporter: &reporter, formats: fanout.wantedFormats,
                                                   facts: fanout.wantedFacts, jsonMembers: fanout.wantedJSONMembers,
                                                   decodedAtNanos: monotonicNanos())
            if cacheable, known == nil {
                if reporters.count >= Self.maxReporters { reporters.removeAll() }
                reporters[key] = reporter
            }
            context.counters.add(batch.isTCP ? .entriesTCP : .entriesHTTP, batch.entryCount)
            // The replay ring keeps what it replays as ALS messages: this one, packed.
            packed.removeAll()
            if fanout.replayRing.isEnabled { ProtobufWire.appendPacked(message.message, to: packed) }
            fanout.publish(batch, payload: packed.bytes, reporter: reporter, fromLoop: context.loop.index)
        }
        context.counters.add(.messagesReceived)
        if rejections.count > 0 { context.counters.add(.otlpRecordsRejected, rejections.count) }
        return Self.response(rejections)
    }

    /// ExportLogsServiceResponse: empty when all was read, else `partial_success`.
    static func response(_ rejections: OTLPRejections) -> [UInt8] {
        guard rejections.count > 0 else { return [] }
        let out = ByteWriter(capacity: 256)
        let proto = ProtoWriter(out)
        proto.message(1) {
            proto.varint(1, UInt64(rejections.count))
            var message = rejections.errorMessage
            message.withUTF8 { proto.bytes(2, $0) }
        }
        return Array(out.bytes)
    }

    /// One unary call: exactly one request message, published when the request stream ends (as
    /// gRPC servers run a unary handler after the client half-closed), so a call that goes on to
    /// send a second message, or none, publishes nothing. The message waits counted in
    /// `Counters.bufferedMessageBytes`, under the same bound as messages still arriving.
    private final class Call: IngestCall {
        private unowned let owner: OTLPIngest
        private var request: [UInt8]?

        init(owner: OTLPIngest) {
            self.owner = owner
        }

        deinit {
            if let request { owner.context.counters.subtract(.bufferedMessageBytes, request.count) }
        }

        func receive(message: UnsafeRawBufferPointer) throws(GRPCStatusError) {
            guard request == nil else {
                throw GRPCStatusError(.invalidArgument, "Export is unary: one request message per call")
            }
            let counters = owner.context.counters
            counters.add(.bufferedMessageBytes, message.count)
            request = Array(message)
            if counters.get(.bufferedMessageBytes) > owner.context.config.maxBufferedMessageBytes {
                throw GRPCStatusError(.resourceExhausted, "too many bytes of messages in flight (--max-buffered-message-bytes)",
                                      reason: .bufferedTooLarge)
            }
        }

        func finish() throws(GRPCStatusError) -> [UInt8] {
            guard let request else { throw GRPCStatusError(.invalidArgument, "Export is unary: it needs a request message") }
            owner.context.counters.add(.otlpExportsGRPC)
            let result: Result<[UInt8], GRPCStatusError> = request.withUnsafeBytes { bytes in
                do throws(GRPCStatusError) { return .success(try owner.export(bytes)) } catch { return .failure(error) }
            }
            return try result.get()
        }
    }
}
