import ALSTapALS
import CEnvoyProtos

/// Who reported a record: the resource's attributes (Envoy's own `node_name`, `cluster_name`,
/// `log_name`, and those a deployment adds) with the record's reporter attributes over them.
struct ReporterFields {
    var nodeId: Bytes?
    var cluster: Bytes?
    var logName: Bytes?
    var pod: Bytes?
    var namespace: Bytes?
    var workload: Bytes?
    var service: Bytes?
    var clusterId: Bytes?
    var podIP: Bytes?

    /// A resource attribute: Envoy's own names, or one of alstap's reporter attributes.
    mutating func read(key: Bytes, value: UnsafeMutablePointer<CAnyValue>) {
        if let attribute = AccessAttribute.named(key) {
            if attribute.isReporterIdentity { read(attribute, value) }
            return
        }
        guard let text = stringValue(value) else { return }
        if key.elementsEqual(AccessAttribute.envoyNodeName.utf8) {
            nodeId = text
        } else if key.elementsEqual(AccessAttribute.envoyClusterName.utf8) {
            cluster = text
        } else if key.elementsEqual(AccessAttribute.envoyLogName.utf8) {
            logName = text
        }
    }

    mutating func read(_ attribute: AccessAttribute, _ value: UnsafeMutablePointer<CAnyValue>) {
        guard let text = stringValue(value) else { return }
        switch attribute {
        case .nodeId: nodeId = text
        case .logName: logName = text
        case .podName: pod = text
        case .namespaceName: namespace = text
        case .workloadName: workload = text
        case .serviceName: service = text
        case .clusterId: clusterId = text
        case .podIP: podIP = text
        default: break
        }
    }

    static func == (a: ReporterFields, b: ReporterFields) -> Bool {
        func same(_ x: Bytes?, _ y: Bytes?) -> Bool {
            switch (x, y) {
            case (nil, nil): true
            case let (x?, y?): x.count == y.count && (x.baseAddress == y.baseAddress || x.elementsEqual(y))
            default: false
            }
        }
        return same(a.nodeId, b.nodeId) && same(a.cluster, b.cluster) && same(a.logName, b.logName) && same(a.pod, b.pod)
            && same(a.namespace, b.namespace) && same(a.workload, b.workload) && same(a.service, b.service)
            && same(a.clusterId, b.clusterId) && same(a.podIP, b.podIP)
    }

    /// The StreamAccessLogsMessage's Identifier (its own fields, without the outer tag) as Istio's sidecars fill it: node id and
    /// cluster, the metadata keys `Reporter` reads (NAMESPACE, NAME, WORKLOAD_NAME, CLUSTER_ID,
    /// INSTANCE_IPS), the log name.
    func writeIdentifier(_ proto: ProtoWriter) {
        func field(_ key: StaticString, _ value: Bytes?) {  // a Struct's string field
            guard let value else { return }
            proto.message(1) {
                proto.bytes(1, key)
                proto.message(2) { proto.bytes(3, value) }  // Value.string_value
            }
        }
        proto.message(1) {
            if let nodeId { proto.bytes(1, nodeId) }
            if let cluster { proto.bytes(2, cluster) }
            if pod != nil || namespace != nil || workload != nil || service != nil || clusterId != nil || podIP != nil {
                proto.message(3) {
                    field("NAMESPACE", namespace)
                    field("NAME", pod)
                    field("WORKLOAD_NAME", workload ?? service)
                    field("CLUSTER_ID", clusterId)
                    field("INSTANCE_IPS", podIP)
                }
            }
        }
        if let logName { proto.bytes(2, logName) }
    }
}

/// A string attribute's meaningful bytes (nil for `-`, empty, or another type).
func stringValue(_ value: UnsafeMutablePointer<CAnyValue>) -> Bytes? {
    guard value.pointee.value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE,
          let text = value.pointee.string_value else { return nil }
    return meaningful(utf8Bytes(text))
}

extension AccessFields {
    /// Sets the field `attribute` names; returns why the value cannot be read, or nil.
    mutating func read(_ attribute: AccessAttribute, _ value: UnsafeMutablePointer<CAnyValue>) -> String? {
        if attribute.isNumber {
            let v = value.pointee
            var parsed: UInt64?
            switch v.value_case {
            case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
                guard v.int_value >= 0 else { return "\(attribute.rawValue) is not a number" }
                parsed = UInt64(v.int_value)
            case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
                guard v.double_value >= 0 && v.double_value < 1e15 else { return "\(attribute.rawValue) is not a number" }
                parsed = UInt64(v.double_value)
            case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
                guard let text = v.string_value, let bytes = meaningful(utf8Bytes(text)) else { return nil }  // `-`: absent
                guard let number = decimal(bytes) else { return "\(attribute.rawValue) is not a number" }
                parsed = number
            default:
                return "\(attribute.rawValue) is not a number"
            }
            return setNumber(attribute, parsed!) ? nil : "\(attribute.rawValue) is not a number"
        }
        let v = value.pointee
        guard v.value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE else {
            return "\(attribute.rawValue) is not a string"
        }
        guard let text = v.string_value, let bytes = meaningful(utf8Bytes(text)) else { return nil }
        switch attribute {
        case .method: method = bytes
        case .scheme: scheme = bytes
        case .authority: authority = bytes
        case .path: path = bytes
        case .query: query = bytes
        case .userAgent: userAgent = bytes
        case .referer: referer = bytes
        case .protocolName: break  // always "http" here; the version says which
        case .protocolVersion: protocolVersion = bytes
        case .requestId: requestId = bytes
        case .forwardedFor: forwardedFor = bytes
        case .originalPath: originalPath = bytes
        case .codeDetails: codeDetails = bytes
        case .responseFlags: responseFlags = bytes
        case .upstreamCluster: upstreamCluster = bytes
        case .upstreamHost: upstreamHost = bytes
        case .upstreamLocalAddress: upstreamLocalAddress = bytes
        case .upstreamTransportFailureReason: upstreamTransportFailureReason = bytes
        case .downstreamLocalAddress: downstreamLocalAddress = bytes
        case .downstreamRemoteAddress: downstreamRemoteAddress = bytes
        case .requestedServerName: requestedServerName = bytes
        case .routeName: routeName = bytes
        case .connectionTerminationDetails: connectionTerminationDetails = bytes
        case .downstreamDirectRemoteAddress: downstreamDirectRemoteAddress = bytes
        case .streamId: streamId = bytes
        case .upstreamPeerWorkload: upstreamPeer.workload = bytes
        case .upstreamPeerNamespace: upstreamPeer.namespace = bytes
        case .upstreamPeerName: upstreamPeer.name = bytes
        case .upstreamPeerService: upstreamPeer.service = bytes
        case .downstreamPeerWorkload: downstreamPeer.workload = bytes
        case .downstreamPeerNamespace: downstreamPeer.namespace = bytes
        case .downstreamPeerName: downstreamPeer.name = bytes
        case .downstreamPeerService: downstreamPeer.service = bytes
        default: break
        }
        return nil
    }

    /// Sets the numeric field `attribute` names (milliseconds become microseconds); false on overflow.
    private mutating func setNumber(_ attribute: AccessAttribute, _ value: UInt64) -> Bool {
        let microseconds = value.multipliedReportingOverflow(by: 1000)
        switch attribute {
        case .code: code = value
        case .requestBodyBytes: requestBodyBytes = value
        case .responseBodyBytes: responseBodyBytes = value
        case .requestHeaderBytes: requestHeaderBytes = value
        case .responseHeaderBytes: responseHeaderBytes = value
        case .attemptCount: attemptCount = value
        case .durationUs: durationUs = value
        case .lastRxByteUs: lastRxByteUs = value
        case .firstUpstreamTxByteUs: firstUpstreamTxByteUs = value
        case .lastUpstreamTxByteUs: lastUpstreamTxByteUs = value
        case .firstUpstreamRxByteUs: firstUpstreamRxByteUs = value
        case .lastUpstreamRxByteUs: lastUpstreamRxByteUs = value
        case .firstDownstreamTxByteUs: firstDownstreamTxByteUs = value
        case .lastDownstreamTxByteUs: lastDownstreamTxByteUs = value
        case .durationMs, .requestDurationMs, .responseDurationMs:
            guard !microseconds.overflow else { return false }
            switch attribute {
            case .durationMs: durationUs = microseconds.partialValue
            case .requestDurationMs: lastRxByteUs = microseconds.partialValue
            default: firstUpstreamRxByteUs = microseconds.partialValue
            }
        default: break
        }
        return true
    }
}
