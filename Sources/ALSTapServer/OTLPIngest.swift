import ALSTapALS
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
    private let translator: OTLPTranslator
    /// Reporters by their Identifier's bytes: an Envoy sends one request per flush, and parsing its
    /// identity each time would cost more than its entries. Bounded in count and key size.
    private var reporters: [[UInt8]: Reporter] = [:]
    private static let maxReporters = 1024
    private static let maxIdentifierBytes = 4096

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
            var bytes = message.message
            if cacheable, let known = reporters[key] {
                reporter = known
                bytes = message.entries
            }
            let batch = try context.decoder.decode(bytes, reporter: &reporter, formats: fanout.wantedFormats,
                                                   facts: fanout.wantedFacts, decodedAtNanos: monotonicNanos())
            if cacheable, bytes.count == message.message.count {
                if reporters.count >= Self.maxReporters { reporters.removeAll() }
                reporters[key] = reporter
            }
            context.counters.add(.entriesHTTP, batch.entryCount)
            fanout.publish(batch, payload: bytes, reporter: reporter, fromLoop: context.loop.index)
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

    /// One unary call: exactly one request message.
    private final class Call: IngestCall {
        private unowned let owner: OTLPIngest
        private var received = false
        private(set) var response: [UInt8] = []

        init(owner: OTLPIngest) {
            self.owner = owner
        }

        func receive(message: UnsafeRawBufferPointer) throws(GRPCStatusError) {
            guard !received else {
                throw GRPCStatusError(.invalidArgument, "Export is unary: one request message per call")
            }
            received = true
            owner.context.counters.add(.otlpExportsGRPC)
            response = try owner.export(message)
        }
    }
}
