import ALSTapALS
import ALSTapMetrics
import ALSTapSystem

/// Envoy's AccessLogService (`StreamAccessLogs`, client streaming): each message is decoded
/// once into the formats and facts the loops' sinks need and published to them; the stream's
/// first Identifier names the reporting Envoy for the messages after it.
final class ALSIngest: IngestMethod {
    let path = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
    private unowned let context: LoopContext
    let isStreaming = true

    init(context: LoopContext) {
        self.context = context
    }

    func makeCall() -> any IngestCall { Call(context: context) }

    private final class Call: IngestCall {
        private unowned let context: LoopContext
        /// The Envoy that opened the stream; set by the first message's Identifier.
        private var reporter = Reporter()

        init(context: LoopContext) {
            self.context = context
        }

        func receive(message: UnsafeRawBufferPointer) throws(GRPCStatusError) {
            let fanout = context.fanout
            let batch = try context.decoder.decode(message, reporter: &reporter, formats: fanout.wantedFormats,
                                                   facts: fanout.wantedFacts, jsonMembers: fanout.wantedJSONMembers,
                                                   decodedAtNanos: monotonicNanos())
            context.counters.add(.messagesReceived)
            context.counters.add(batch.isTCP ? .entriesTCP : .entriesHTTP, batch.entryCount)
            fanout.publish(batch, payload: message, reporter: reporter, fromLoop: context.loop.index)
        }

        /// StreamAccessLogsResponse is empty.
        func finish() -> [UInt8] { [] }
    }
}
