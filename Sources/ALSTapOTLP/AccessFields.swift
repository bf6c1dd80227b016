#if canImport(Glibc)
import Glibc
#endif
import ALSTapALS

package typealias Bytes = UnsafeBufferPointer<UInt8>

/// The identity Istio's peer metadata gives a side (its keys: workload, namespace, name, service).
package struct PeerFields {
    package var workload: Bytes?
    package var namespace: Bytes?
    package var name: Bytes?
    package var service: Bytes?

    package var isEmpty: Bool { workload == nil && namespace == nil && name == nil && service == nil }
}

/// What one access-log record says, whichever way it came (OTLP attributes, Istio's text line),
/// as slices into the request being translated: valid until the translator moves on.
/// `ALSEntryBuilder` builds it as Envoy's HTTPAccessLogEntry.
package struct AccessFields {
    package var startNanos: UInt64 = 0
    package var method: Bytes?
    package var scheme: Bytes?
    package var authority: Bytes?
    package var path: Bytes?
    package var query: Bytes?
    package var userAgent: Bytes?
    package var referer: Bytes?
    package var forwardedFor: Bytes?
    package var requestId: Bytes?
    package var originalPath: Bytes?
    /// `HTTP/1.1` (Envoy's %PROTOCOL%) or a bare version (`1.1`, `2`).
    package var protocolVersion: Bytes?
    package var requestBodyBytes: UInt64?
    package var responseBodyBytes: UInt64?
    package var code: UInt64?
    package var codeDetails: Bytes?
    /// Envoy's short codes, comma-separated (`UH,UF`).
    package var responseFlags: Bytes?
    package var upstreamCluster: Bytes?
    package var upstreamHost: Bytes?
    package var upstreamLocalAddress: Bytes?
    package var upstreamTransportFailureReason: Bytes?
    package var downstreamLocalAddress: Bytes?
    package var downstreamRemoteAddress: Bytes?
    package var requestedServerName: Bytes?
    package var routeName: Bytes?
    package var connectionTerminationDetails: Bytes?
    package var requestHeaderBytes: UInt64?
    package var responseHeaderBytes: UInt64?
    package var downstreamDirectRemoteAddress: Bytes?
    package var streamId: Bytes?
    package var attemptCount: UInt64?
    /// Durations from the request's first byte, in microseconds.
    package var durationUs: UInt64?
    package var lastRxByteUs: UInt64?
    package var firstUpstreamTxByteUs: UInt64?
    package var lastUpstreamTxByteUs: UInt64?
    package var firstUpstreamRxByteUs: UInt64?
    package var lastUpstreamRxByteUs: UInt64?
    package var firstDownstreamTxByteUs: UInt64?
    package var lastDownstreamTxByteUs: UInt64?
    package var upstreamPeer = PeerFields()
    package var downstreamPeer = PeerFields()
    package var traceId: Bytes?
    package var spanId: Bytes?
    /// A body alstap could not read as fields: shown as the entry's `body`.
    package var body: Bytes?

    package init() {}

    /// A record of a TCP connection: Envoy's TCP access logs format no method, path, protocol,
    /// authority or code (`-`, `0`), where every HTTP record has a method, but they say where the
    /// connection went. Its byte counts are the connection's (`%BYTES_RECEIVED%`, `%BYTES_SENT%`).
    /// (A record with only a body, an application's log line, stays an HTTP entry with its body.)
    package var isTCP: Bool {
        method == nil && path == nil && protocolVersion == nil && authority == nil && (code ?? 0) == 0 && body == nil
            && (upstreamCluster != nil || upstreamHost != nil || downstreamRemoteAddress != nil)
    }

    /// Whether anything at all was read (a record with nothing is rejected).
    package var isEmpty: Bool {
        method == nil && path == nil && authority == nil && code == nil && body == nil && upstreamCluster == nil
            && durationUs == nil && downstreamRemoteAddress == nil && requestId == nil
    }
}

/// Envoy's format strings write `-` for a value they do not have; OTLP attributes and Istio's
/// text line carry it so. It is absent, like an empty string. A value ends at a NUL byte (see
/// `beforeNUL`).
@inline(__always)
package func meaningful(_ value: Bytes) -> Bytes? {
    let bytes = beforeNUL(value)
    return bytes.isEmpty || (bytes.count == 1 && bytes[0] == UInt8(ascii: "-")) ? nil : bytes
}

/// The bytes before the first NUL: a translated entry becomes protobuf-c structs, whose strings
/// end at a NUL when packed (for the replay ring and relays), so what is shown live ends there too.
@inline(__always)
package func beforeNUL(_ bytes: Bytes) -> Bytes {
    guard let base = bytes.baseAddress, let nul = memchr(base, 0, bytes.count) else { return bytes }
    return Bytes(start: base, count: UnsafeRawPointer(nul) - UnsafeRawPointer(base))
}

/// A decimal number (Envoy formats numbers as strings); nil for anything else.
package func decimal(_ bytes: Bytes) -> UInt64? {
    guard !bytes.isEmpty, bytes.count <= 19 else { return nil }
    var value: UInt64 = 0
    for byte in bytes {
        guard byte >= 48 && byte <= 57 else { return nil }
        value = value * 10 + UInt64(byte - 48)
    }
    return value
}
