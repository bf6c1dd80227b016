#if canImport(Glibc)
import Glibc
#endif

/// The OTLP attributes alstap reads as an access-log entry's fields: OpenTelemetry's HTTP
/// semantic-convention names where one exists, `envoy.*` for the rest. `deploy/envoy/` and
/// `deploy/istio/` set each to an Envoy format string (`envoyFormat`), and the README's mapping
/// table lists them: this enum is the one list of them.
package enum AccessAttribute: String, CaseIterable, Sendable {
    case method = "http.request.method"
    case scheme = "url.scheme"
    case authority = "server.address"
    case path = "url.path"
    case query = "url.query"
    case userAgent = "user_agent.original"
    case referer = "http.request.header.referer"
    case protocolName = "network.protocol.name"
    case protocolVersion = "network.protocol.version"
    case requestBodyBytes = "http.request.body.size"
    case code = "http.response.status_code"
    case responseBodyBytes = "http.response.body.size"
    case requestId = "envoy.request_id"
    case forwardedFor = "envoy.forwarded_for"
    case originalPath = "envoy.original_path"
    case codeDetails = "envoy.response_code_details"
    case responseFlags = "envoy.response_flags"
    case upstreamCluster = "envoy.upstream_cluster"
    case upstreamHost = "envoy.upstream_host"
    case upstreamLocalAddress = "envoy.upstream_local_address"
    case upstreamTransportFailureReason = "envoy.upstream_transport_failure_reason"
    case downstreamLocalAddress = "envoy.downstream_local_address"
    case downstreamRemoteAddress = "envoy.downstream_remote_address"
    case requestedServerName = "envoy.requested_server_name"
    case routeName = "envoy.route_name"
    case connectionTerminationDetails = "envoy.connection_termination_details"
    case requestHeaderBytes = "envoy.request_header_bytes"
    case responseHeaderBytes = "envoy.response_header_bytes"
    case downstreamDirectRemoteAddress = "envoy.downstream_direct_remote_address"
    case streamId = "envoy.stream_id"
    case attemptCount = "envoy.upstream_request_attempt_count"
    // Durations from the request's first byte, in microseconds (Envoy's %COMMON_DURATION%), as
    // the JSON's `durations`; or in milliseconds (%DURATION%, %REQUEST_DURATION%,
    // %RESPONSE_DURATION%), for configurations written by hand.
    case durationUs = "envoy.duration_us"
    case lastRxByteUs = "envoy.last_rx_byte_us"
    case firstUpstreamTxByteUs = "envoy.first_upstream_tx_byte_us"
    case lastUpstreamTxByteUs = "envoy.last_upstream_tx_byte_us"
    case firstUpstreamRxByteUs = "envoy.first_upstream_rx_byte_us"
    case lastUpstreamRxByteUs = "envoy.last_upstream_rx_byte_us"
    case firstDownstreamTxByteUs = "envoy.first_downstream_tx_byte_us"
    case lastDownstreamTxByteUs = "envoy.last_downstream_tx_byte_us"
    case durationMs = "envoy.duration_ms"
    case requestDurationMs = "envoy.request_duration_ms"
    case responseDurationMs = "envoy.response_duration_ms"
    case upstreamPeerWorkload = "envoy.upstream_peer.workload"
    case upstreamPeerNamespace = "envoy.upstream_peer.namespace"
    case upstreamPeerName = "envoy.upstream_peer.name"
    case upstreamPeerService = "envoy.upstream_peer.service"
    case downstreamPeerWorkload = "envoy.downstream_peer.workload"
    case downstreamPeerNamespace = "envoy.downstream_peer.namespace"
    case downstreamPeerName = "envoy.downstream_peer.name"
    case downstreamPeerService = "envoy.downstream_peer.service"
    // The reporting Envoy, when the record carries it (Istio's `logFormat.labels` are record
    // attributes); else the resource's attributes of the same names say it.
    case nodeId = "envoy.node_id"
    case logName = "envoy.log_name"
    case podName = "k8s.pod.name"
    case namespaceName = "k8s.namespace.name"
    case workloadName = "k8s.deployment.name"
    case serviceName = "service.name"
    case clusterId = "k8s.cluster.name"
    case podIP = "k8s.pod.ip"

    /// The Envoy format string that fills it (the shipped configurations use these), or nil for
    /// those a deployment fills its own way (the peers' and the reporter's identity) and the
    /// millisecond durations (the microsecond ones say more).
    package var envoyFormat: String? {
        switch self {
        case .method: "%REQ(:METHOD)%"
        case .scheme: "%REQ(:SCHEME)%"
        case .authority: "%REQ(:AUTHORITY)%"
        case .path: "%REQ(:PATH)%"
        case .query: nil
        case .userAgent: "%REQ(USER-AGENT)%"
        case .referer: "%REQ(REFERER)%"
        case .protocolName: nil
        case .protocolVersion: "%PROTOCOL%"
        case .requestBodyBytes: "%BYTES_RECEIVED%"
        case .code: "%RESPONSE_CODE%"
        case .responseBodyBytes: "%BYTES_SENT%"
        case .requestId: "%REQ(X-REQUEST-ID)%"
        case .forwardedFor: "%REQ(X-FORWARDED-FOR)%"
        case .originalPath: "%REQ(X-ENVOY-ORIGINAL-PATH)%"
        case .codeDetails: "%RESPONSE_CODE_DETAILS%"
        case .responseFlags: "%RESPONSE_FLAGS%"
        case .upstreamCluster: "%UPSTREAM_CLUSTER_RAW%"
        case .upstreamHost: "%UPSTREAM_HOST%"
        case .upstreamLocalAddress: "%UPSTREAM_LOCAL_ADDRESS%"
        case .upstreamTransportFailureReason: "%UPSTREAM_TRANSPORT_FAILURE_REASON%"
        case .downstreamLocalAddress: "%DOWNSTREAM_LOCAL_ADDRESS%"
        case .downstreamRemoteAddress: "%DOWNSTREAM_REMOTE_ADDRESS%"
        case .requestedServerName: "%REQUESTED_SERVER_NAME%"
        case .routeName: "%ROUTE_NAME%"
        case .connectionTerminationDetails: "%CONNECTION_TERMINATION_DETAILS%"
        case .requestHeaderBytes: "%REQUEST_HEADERS_BYTES%"
        case .responseHeaderBytes: "%RESPONSE_HEADERS_BYTES%"
        case .downstreamDirectRemoteAddress: "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%"
        case .streamId: "%STREAM_ID%"
        case .attemptCount: "%UPSTREAM_REQUEST_ATTEMPT_COUNT%"
        case .durationUs: "%COMMON_DURATION(DS_RX_BEG:DS_TX_END:us)%"
        case .lastRxByteUs: "%COMMON_DURATION(DS_RX_BEG:DS_RX_END:us)%"
        case .firstUpstreamTxByteUs: "%COMMON_DURATION(DS_RX_BEG:US_TX_BEG:us)%"
        case .lastUpstreamTxByteUs: "%COMMON_DURATION(DS_RX_BEG:US_TX_END:us)%"
        case .firstUpstreamRxByteUs: "%COMMON_DURATION(DS_RX_BEG:US_RX_BEG:us)%"
        case .lastUpstreamRxByteUs: "%COMMON_DURATION(DS_RX_BEG:US_RX_END:us)%"
        case .firstDownstreamTxByteUs: "%COMMON_DURATION(DS_RX_BEG:DS_TX_BEG:us)%"
        default: nil
        }
    }

    /// Whether it is in the recommended set: what the tap shows, filters, pairs (the upstream local
    /// address tells retries apart) and aggregates on.
    /// OTLP carries every attribute as a key and a value message, and unpacking them is most of
    /// an OTLP entry's cost (BENCHMARKS.md), so the set is kept to these; the others fill the
    /// rest of the JSON for those who want all of it.
    package var isRecommended: Bool {
        switch self {
        case .method, .scheme, .authority, .path, .userAgent, .protocolVersion, .requestBodyBytes, .code,
             .responseBodyBytes, .requestId, .codeDetails, .responseFlags, .upstreamCluster, .upstreamHost,
             .upstreamLocalAddress, .downstreamLocalAddress, .downstreamRemoteAddress, .routeName, .durationUs:
            true
        default:
            false
        }
    }

    /// Whether it says who reported the entry (and so which reporter a batch belongs to).
    package var isReporterIdentity: Bool {
        switch self {
        case .nodeId, .logName, .podName, .namespaceName, .workloadName, .serviceName, .clusterId, .podIP: true
        default: false
        }
    }

    /// Whether its value is a number (Envoy writes numbers as strings; ints and doubles are read too).
    package var isNumber: Bool {
        switch self {
        case .code, .requestBodyBytes, .responseBodyBytes, .requestHeaderBytes, .responseHeaderBytes, .attemptCount,
             .durationUs, .lastRxByteUs, .firstUpstreamTxByteUs, .lastUpstreamTxByteUs, .firstUpstreamRxByteUs,
             .lastUpstreamRxByteUs, .firstDownstreamTxByteUs, .lastDownstreamTxByteUs, .durationMs, .requestDurationMs,
             .responseDurationMs: true
        default: false
        }
    }

    /// Looks a key up without allocating: by length and last byte, then the few candidates.
    package static func named(_ key: UnsafeBufferPointer<UInt8>) -> AccessAttribute? {
        guard let last = key.last, key.count < 64, let base = key.baseAddress else { return nil }
        for candidate in table[key.count][Int(last & 15)] {
            // Same length by the table's construction: one memcmp.
            let equal = candidate.name.withUnsafeBufferPointer { memcmp($0.baseAddress!, base, key.count) == 0 }
            if equal { return candidate.attribute }
        }
        return nil
    }

    private static let table: [[[(name: [UInt8], attribute: AccessAttribute)]]] = {
        var table = Array(repeating: Array(repeating: [(name: [UInt8], attribute: AccessAttribute)](), count: 16),
                          count: 64)
        for attribute in allCases {
            let name = Array(attribute.rawValue.utf8)
            table[name.count][Int(name.last! & 15)].append((name, attribute))
        }
        return table
    }()

    /// Resource attributes Envoy's OpenTelemetry access logger sets by itself.
    package static let envoyNodeName = "node_name"
    package static let envoyClusterName = "cluster_name"
    package static let envoyLogName = "log_name"
}
