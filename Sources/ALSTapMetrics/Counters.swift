import ALSTapALS
import CoreMetrics
import Prometheus
import Synchronization

/// Server-wide counters, updated once per message, batch or connection (never per entry).
/// Each is an atomic read by `/stats` and tests, exported on `/metrics` in Prometheus text
/// format through swift-metrics and swift-prometheus.
public final class Counters: Sendable {
    public enum Name: Int, CaseIterable, Sendable {
        case connectionsAccepted, connectionsActive, connectionsRejected
        case alsStreamsStarted, alsStreamsActive
        case alsStreamsOK, alsStreamsInvalidArgument, alsStreamsResourceExhausted, alsStreamsUnimplemented
        case alsStreamsInternal, alsStreamsCancelled
        case messagesReceived, entriesHTTP, entriesTCP
        case decodeInvalidProtobuf, decodeTooLarge, decodeCompressed, decodeTruncated
        case subscribersActive, subscribersRejected, linesSent, linesDropped, linesRateLimited, inboxDropped
        case headTooLarge, headTimeouts, unauthorized, pairTableFull
        case bytesReceived, bytesSent
        case peerStreamsOpened, peerStreamsFailed
        case decodeTooDeep, decodeTooManyEntries, decodeUnpackedTooLarge, decodeEncodedTooLarge, bufferedTooLarge
        case bufferedMessageBytes
        case http2ConnectionErrors, http2StreamsActive, http2StreamsRefused, headerListTooLarge, tapStreamsReset
        case alsUnauthenticated
        case subscriberQueuedBytes, linesDroppedBytes
        case replayEntriesDecoded
        case staleEvents
        case topOverflow, topSnapshotsSkipped
        case otlpExportsGRPC, otlpExportsHTTP, otlpRecordsRejected, otlpHTTPRefused
        case alsStreamsAged, alsStreamsEndedForShutdown, alsLateMessages, notReadyAnswers, alsStreamsUnavailable

    /// The counter of a refusal reason (nil: none).
    public init?(refusal reason: GRPCStatusError.Reason) {
        switch reason {
        case .none: return nil
        case .invalidProtobuf: self = .decodeInvalidProtobuf
        case .tooDeep: self = .decodeTooDeep
        case .tooManyEntries: self = .decodeTooManyEntries
        case .unpackedTooLarge: self = .decodeUnpackedTooLarge
        case .encodedTooLarge: self = .decodeEncodedTooLarge
        case .messageTooLarge: self = .decodeTooLarge
        case .bufferedTooLarge: self = .bufferedTooLarge
        case .compressed: self = .decodeCompressed
        case .truncated: self = .decodeTruncated
        }
    }
    }

    /// How a counter appears on /metrics.
    private struct Export {
        let name: String
        let labels: [(String, String)]
        let isGauge: Bool
    }

    private static func export(_ name: Name) -> Export {
        func counter(_ metric: String, _ labels: [(String, String)] = []) -> Export {
            Export(name: metric, labels: labels, isGauge: false)
        }
        func gauge(_ metric: String) -> Export { Export(name: metric, labels: [], isGauge: true) }
        let streams = "alstap_als_streams_finished_total"
        let decode = "alstap_decode_errors_total"
        let limits = "alstap_limit_hits_total"
        switch name {
        case .connectionsAccepted: return counter("alstap_connections_accepted_total")
        case .connectionsActive: return gauge("alstap_connections_active")
        case .connectionsRejected: return counter(limits, [("limit", "max_connections")])
        case .alsStreamsStarted: return counter("alstap_als_streams_started_total")
        case .alsStreamsActive: return gauge("alstap_als_streams_active")
        case .alsStreamsOK: return counter(streams, [("grpc_status", "0")])
        case .alsStreamsInvalidArgument: return counter(streams, [("grpc_status", "3")])
        case .alsStreamsResourceExhausted: return counter(streams, [("grpc_status", "8")])
        case .alsStreamsUnimplemented: return counter(streams, [("grpc_status", "12")])
        case .alsStreamsInternal: return counter(streams, [("grpc_status", "13")])
        case .alsStreamsCancelled: return counter(streams, [("grpc_status", "cancelled")])
        case .messagesReceived: return counter("alstap_messages_received_total")
        case .entriesHTTP: return counter("alstap_entries_received_total", [("type", "http")])
        case .entriesTCP: return counter("alstap_entries_received_total", [("type", "tcp")])
        case .decodeInvalidProtobuf: return counter(decode, [("reason", "invalid_protobuf")])
        case .decodeTooLarge: return counter(limits, [("limit", "max_message_bytes")])
        case .decodeCompressed: return counter(decode, [("reason", "compressed")])
        case .decodeTruncated: return counter(decode, [("reason", "truncated")])
        case .subscribersActive: return gauge("alstap_subscribers_active")
        case .subscribersRejected: return counter(limits, [("limit", "max_subscribers")])
        case .linesSent: return counter("alstap_lines_sent_total")
        case .linesDropped: return counter("alstap_lines_dropped_total", [("reason", "subscriber_queue")])
        case .linesRateLimited: return counter("alstap_lines_dropped_total", [("reason", "rate_limit")])
        case .inboxDropped: return counter("alstap_lines_dropped_total", [("reason", "loop_inbox")])
        case .headTooLarge: return counter(limits, [("limit", "max_head_bytes")])
        case .headTimeouts: return counter(limits, [("limit", "head_timeout")])
        case .unauthorized: return counter("alstap_unauthorized_requests_total")
        case .pairTableFull: return counter(limits, [("limit", "pair_table")])
        case .bytesReceived: return counter("alstap_bytes_received_total")
        case .bytesSent: return counter("alstap_bytes_sent_total")
        case .peerStreamsOpened: return counter("alstap_peer_streams_opened_total")
        case .peerStreamsFailed: return counter("alstap_peer_streams_failed_total")
        case .decodeTooDeep: return counter(limits, [("limit", "max_nesting_depth")])
        case .decodeTooManyEntries: return counter(limits, [("limit", "max_entries_per_message")])
        case .decodeUnpackedTooLarge: return counter(limits, [("limit", "max_unpacked_bytes")])
        case .decodeEncodedTooLarge: return counter(limits, [("limit", "max_unpacked_bytes_lines")])
        case .bufferedTooLarge: return counter(limits, [("limit", "max_buffered_message_bytes")])
        case .bufferedMessageBytes: return gauge("alstap_buffered_message_bytes")
        case .http2ConnectionErrors: return counter("alstap_http2_connection_errors_total")
        case .http2StreamsActive: return gauge("alstap_http2_streams_active")
        case .http2StreamsRefused: return counter(limits, [("limit", "max_streams")])
        case .headerListTooLarge: return counter(limits, [("limit", "max_header_list_bytes")])
        case .tapStreamsReset: return counter("alstap_tap_streams_reset_total")
        case .alsUnauthenticated: return counter("alstap_unauthenticated_streams_total")
        case .subscriberQueuedBytes: return gauge("alstap_subscriber_queued_bytes")
        case .linesDroppedBytes: return counter("alstap_lines_dropped_total", [("reason", "subscriber_bytes")])
        case .replayEntriesDecoded: return counter("alstap_replay_entries_decoded_total")
        case .staleEvents: return counter("alstap_stale_events_total")
        case .topOverflow: return counter(limits, [("limit", "top_groups")])
        case .topSnapshotsSkipped: return counter("alstap_top_snapshots_skipped_total")
        case .otlpExportsGRPC: return counter("alstap_otlp_exports_total", [("transport", "grpc")])
        case .otlpExportsHTTP: return counter("alstap_otlp_exports_total", [("transport", "http")])
        case .otlpRecordsRejected: return counter("alstap_otlp_records_rejected_total")
        case .otlpHTTPRefused: return counter("alstap_otlp_http_refused_total")
        case .alsStreamsAged: return counter("alstap_als_streams_ended_total", [("reason", "max_stream_age")])
        case .alsStreamsEndedForShutdown: return counter("alstap_als_streams_ended_total", [("reason", "shutdown")])
        case .alsLateMessages: return counter("alstap_als_late_messages_total")
        case .notReadyAnswers: return counter("alstap_readyz_not_ready_total")
        case .alsStreamsUnavailable: return counter(streams, [("grpc_status", "14")])
        }
    }

    @usableFromInline let values: [AtomicCounter]
    private let registry = PrometheusCollectorRegistry()
    @usableFromInline let counters: [CoreMetrics.Counter?]
    private let gauges: [CoreMetrics.Gauge?]
    /// From decoding a message to writing its lines to a subscriber's socket.
    public let deliveryLatency = LatencyHistogram()

    public init() {
        values = Name.allCases.map { _ in AtomicCounter() }
        let factory = PrometheusMetricsFactory(registry: registry)
        counters = Name.allCases.map { name in
            let export = Self.export(name)
            return export.isGauge ? nil : CoreMetrics.Counter(label: export.name, dimensions: export.labels, factory: factory)
        }
        gauges = Name.allCases.map { name in
            let export = Self.export(name)
            return export.isGauge ? CoreMetrics.Gauge(label: export.name, dimensions: export.labels, factory: factory) : nil
        }
    }

    // Inlinable: the tap core counts per batch and per write, from other modules.
    @inlinable
    public func add(_ name: Name, _ amount: Int = 1) {
        values[name.rawValue].add(amount)
        counters[name.rawValue]?.increment(by: amount)
    }

    /// Gauges only (active connections, streams, subscribers).
    @inlinable
    public func subtract(_ name: Name, _ amount: Int = 1) {
        values[name.rawValue].add(-amount)
    }

    @inlinable
    public func get(_ name: Name) -> Int { values[name.rawValue].value }

    public var entriesReceived: Int { self.get(.entriesHTTP) + self.get(.entriesTCP) }

    public var alsStreamsFailed: Int {
        [Name.alsStreamsInvalidArgument, .alsStreamsResourceExhausted, .alsStreamsUnimplemented, .alsStreamsInternal,
         .alsStreamsCancelled].reduce(0) { $0 + get($1) }
    }

    /// `/metrics`: Prometheus text format. Gauges are read from the atomics at scrape time.
    public func prometheusText(extra: [(name: String, value: Int)] = []) -> [UInt8] {
        for name in Name.allCases { gauges[name.rawValue]?.record(get(name)) }
        var text = registry.emitToBuffer()
        var lines = ""
        for (quantile, label) in [(0.5, "0.5"), (0.99, "0.99"), (0.999, "0.999")] {
            let seconds = Double(deliveryLatency.quantile(quantile)) / 1_000_000
            lines += "alstap_delivery_latency_seconds{quantile=\"\(label)\"} \(seconds)\n"
        }
        lines += "alstap_delivery_latency_seconds_count \(deliveryLatency.count)\n"
        for (name, value) in extra { lines += "\(name) \(value)\n" }
        text += Array(("# TYPE alstap_delivery_latency_seconds summary\n" + lines).utf8)
        return text
    }

    /// `/stats`: `name value` lines for every counter, plus a few sums and latency quantiles.
    public func snapshot() -> String {
        var lines = Name.allCases.map { "\($0) \(get($0))" }
        lines.append("entriesReceived \(entriesReceived)")
        lines.append("alsStreamsFailed \(alsStreamsFailed)")
        lines.append("latencySamples \(deliveryLatency.count)")
        for (name, q) in [("latencyP50Micros", 0.5), ("latencyP99Micros", 0.99), ("latencyP999Micros", 0.999)] {
            lines.append("\(name) \(deliveryLatency.quantile(q))")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// One relaxed atomic integer (Atomic is non-copyable, so arrays hold these boxes).
public final class AtomicCounter: Sendable {
    @usableFromInline let atomic = Atomic<Int>(0)

    public init() {}

    @inlinable
    public func add(_ amount: Int) { atomic.wrappingAdd(amount, ordering: .relaxed) }

    /// Adds and returns the new value (sequence numbers).
    public func addAndGet(_ amount: Int) -> Int { atomic.wrappingAdd(amount, ordering: .relaxed).newValue }

    @inlinable
    public var value: Int { atomic.load(ordering: .relaxed) }
}
