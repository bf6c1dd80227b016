import ALSTapALS

/// Writes `AccessFields` as Envoy's `HTTPAccessLogEntry` (envoy.data.accesslog.v3), field by
/// field in wire format, so an OTLP record becomes the message alstap already decodes, replays,
/// relays and captures: one representation of an entry behind every consumer.
package struct ALSEntryWriter {
    package let proto: ProtoWriter

    package init(_ out: ByteWriter) {
        proto = ProtoWriter(out)
    }

    /// Custom tags alstap reads back as the JSON's `traceId`, `spanId` and `body`.
    package static let traceIdTag: StaticString = "otel.trace_id"
    package static let spanIdTag: StaticString = "otel.span_id"
    package static let bodyTag: StaticString = "otel.body"

    /// Where attributes alstap has no field for go: custom tags, or logged headers.
    package enum ExtraPlace {
        case common, request, response
    }

    /// Writes one entry as field 1 (`log_entry`) of HTTPAccessLogEntries; `extras` writes, at
    /// each place, what other attributes the record had (`customTag`, `header`).
    package func entry(_ f: AccessFields, extras: (ExtraPlace, ALSEntryWriter) -> Void) {
        proto.message(1) {
            proto.message(1) { common(f, extras: extras) }
            if let version = Self.protocolVersion(f.protocolVersion) { proto.varint(2, version) }
            proto.message(3) {
                request(f)
                extras(.request, self)
            }
            proto.message(4) {
                response(f)
                extras(.response, self)
            }
        }
    }

    /// A logged header (request_headers 13 / response_headers 4: map<string, string>) at `place`.
    package func header(_ place: ExtraPlace, _ name: Bytes, _ value: Bytes) {
        proto.message(place == .request ? 13 : 4) {
            proto.bytes(1, name)
            proto.bytes(2, value)
        }
    }

    /// One entry of AccessLogCommon.custom_tags (map<string, string>).
    package func customTag(_ key: Bytes, _ value: Bytes) {
        proto.message(22) {
            proto.bytes(1, key)
            proto.bytes(2, value)
        }
    }

    private func customTag(_ key: StaticString, _ value: Bytes) {
        customTag(Bytes(start: key.utf8Start, count: key.utf8CodeUnitCount), value)
    }

    private func common(_ f: AccessFields, extras: (ExtraPlace, ALSEntryWriter) -> Void) {
        address(2, f.downstreamRemoteAddress)
        address(3, f.downstreamLocalAddress)
        if let sni = f.requestedServerName { proto.message(4) { proto.bytes(3, sni) } }
        if f.startNanos > 0 {
            proto.message(5) {
                proto.varint(1, f.startNanos / 1_000_000_000)
                if f.startNanos % 1_000_000_000 > 0 { proto.varint(2, f.startNanos % 1_000_000_000) }
            }
        }
        duration(6, f.lastRxByteUs)
        duration(7, f.firstUpstreamTxByteUs)
        duration(8, f.lastUpstreamTxByteUs)
        duration(9, f.firstUpstreamRxByteUs)
        duration(10, f.lastUpstreamRxByteUs)
        duration(11, f.firstDownstreamTxByteUs)
        duration(12, f.lastDownstreamTxByteUs)
        address(13, f.upstreamHost)
        address(14, f.upstreamLocalAddress)
        if let cluster = f.upstreamCluster { proto.bytes(15, cluster) }
        if let flags = f.responseFlags { responseFlags(flags) }
        if let reason = f.upstreamTransportFailureReason { proto.bytes(18, reason) }
        if let route = f.routeName { proto.bytes(19, route) }
        address(20, f.downstreamDirectRemoteAddress)
        peer(key: "upstream_peer", f.upstreamPeer)
        peer(key: "downstream_peer", f.downstreamPeer)
        if let trace = f.traceId { hexTag(Self.traceIdTag, trace) }
        if let span = f.spanId { hexTag(Self.spanIdTag, span) }
        if let body = f.body { customTag(Self.bodyTag, body) }
        extras(.common, self)
        duration(23, f.durationUs)
        if let count = f.attemptCount, count > 0 { proto.varint(24, count) }
        if let details = f.connectionTerminationDetails { proto.bytes(25, details) }
        if let stream = f.streamId { proto.bytes(26, stream) }
    }

    private func request(_ f: AccessFields) {
        if let method = f.method, let number = Self.methodNumber(method) { proto.varint(1, number) }
        if let scheme = f.scheme { proto.bytes(2, scheme) }
        if let authority = f.authority { proto.bytes(3, authority) }
        if let path = f.path {
            if let query = f.query, !path.contains(UInt8(ascii: "?")) {
                let start = proto.begin(5)
                proto.out.append(UnsafeRawBufferPointer(path))
                proto.out.append(UInt8(ascii: "?"))
                proto.out.append(UnsafeRawBufferPointer(query))
                proto.end(start)
            } else {
                proto.bytes(5, path)
            }
        }
        if let agent = f.userAgent { proto.bytes(6, agent) }
        if let referer = f.referer { proto.bytes(7, referer) }
        if let forwarded = f.forwardedFor { proto.bytes(8, forwarded) }
        if let id = f.requestId { proto.bytes(9, id) }
        if let original = f.originalPath { proto.bytes(10, original) }
        if let bytes = f.requestHeaderBytes, bytes > 0 { proto.varint(11, bytes) }
        if let bytes = f.requestBodyBytes, bytes > 0 { proto.varint(12, bytes) }
    }

    private func response(_ f: AccessFields) {
        if let code = f.code, code > 0 { proto.message(1) { proto.varint(1, code) } }
        if let bytes = f.responseHeaderBytes, bytes > 0 { proto.varint(2, bytes) }
        if let bytes = f.responseBodyBytes, bytes > 0 { proto.varint(3, bytes) }
        if let details = f.codeDetails { proto.bytes(6, details) }
    }

    private func duration(_ field: UInt32, _ microseconds: UInt64?) {
        guard let microseconds else { return }
        proto.message(field) {
            if microseconds >= 1_000_000 { proto.varint(1, microseconds / 1_000_000) }
            if microseconds % 1_000_000 > 0 { proto.varint(2, microseconds % 1_000_000 * 1000) }
        }
    }

    /// `10.0.0.1:8080`, `[::1]:8080` or a bare host as an Address's SocketAddress; a path
    /// (`/run/x.sock`, `@abstract`) as its Pipe.
    private func address(_ field: UInt32, _ text: Bytes?) {
        guard let text else { return }
        proto.message(field) {
            if text[0] == UInt8(ascii: "/") || text[0] == UInt8(ascii: "@") {
                proto.message(2) { proto.bytes(1, text) }
                return
            }
            var host = text
            var port: UInt64?
            if text[0] == UInt8(ascii: "["), let close = text.firstIndex(of: UInt8(ascii: "]")) {
                host = Bytes(rebasing: text[1..<close])
                if close + 1 < text.count, text[close + 1] == UInt8(ascii: ":") {
                    port = decimal(Bytes(rebasing: text[(close + 2)...]))
                }
            } else if let colon = text.lastIndex(of: UInt8(ascii: ":")), text.firstIndex(of: UInt8(ascii: ":")) == colon,
                      let number = decimal(Bytes(rebasing: text[(colon + 1)...])) {
                host = Bytes(rebasing: text[..<colon])
                port = number
            }
            proto.message(1) {
                proto.bytes(2, host)
                if let port, port > 0, port <= 65535 { proto.varint(3, port) }
            }
        }
    }

    /// Envoy's short codes (`UH,UF`) as ResponseFlags' bools; unknown codes are dropped.
    private func responseFlags(_ codes: Bytes) {
        proto.message(16) {
            var start = 0
            for end in 0...codes.count where end == codes.count || codes[end] == UInt8(ascii: ",") {
                defer { start = end + 1 }
                guard end > start, let number = ResponseFlagCodes.fieldNumber(of: Bytes(rebasing: codes[start..<end]))
                else { continue }
                if number == 13 {  // unauthorized_details, a message: present means UAEX
                    proto.tag(13, 2)
                    proto.out.append(0)
                } else {
                    proto.bool(UInt32(number))
                }
            }
        }
    }

    /// Istio's peer metadata as filter state: `key` → Any(google.protobuf.Struct) with the
    /// workload, namespace, name and service keys (what `EntryView` reads from sidecars' ALS).
    private func peer(key: StaticString, _ peer: PeerFields) {
        guard !peer.isEmpty else { return }
        proto.message(21) {
            proto.bytes(1, key)
            proto.message(2) {
                proto.bytes(1, "type.googleapis.com/google.protobuf.Struct")
                proto.message(2) {
                    structString("workload", peer.workload)
                    structString("namespace", peer.namespace)
                    structString("name", peer.name)
                    structString("service", peer.service)
                }
            }
        }
    }

    /// One string field of a google.protobuf.Struct (fields: map<string, Value>).
    package func structString(_ key: StaticString, _ value: Bytes?) {
        guard let value else { return }
        proto.message(1) {
            proto.bytes(1, key)
            proto.message(2) { proto.bytes(3, value) }  // Value.string_value
        }
    }

    private func hexTag(_ key: StaticString, _ raw: Bytes) {
        proto.message(22) {
            proto.bytes(1, key)
            let start = proto.begin(2)
            let digits: StaticString = "0123456789abcdef"
            for byte in raw {
                proto.out.append(digits.utf8Start[Int(byte >> 4)])
                proto.out.append(digits.utf8Start[Int(byte & 15)])
            }
            proto.end(start)
        }
    }

    static func methodNumber(_ method: Bytes) -> UInt64? {
        for raw in UInt32(1)...9 {
            if let name = JSONLineEncoder.methodName(raw),
               name.utf8CodeUnitCount == method.count, Bytes(start: name.utf8Start, count: name.utf8CodeUnitCount).elementsEqual(method) {
                return UInt64(raw)
            }
        }
        return nil
    }

    /// HTTPVersion from `HTTP/1.1` or a bare `1.1`.
    static func protocolVersion(_ text: Bytes?) -> UInt64? {
        guard var text else { return nil }
        if text.count > 5, text.starts(with: "HTTP/".utf8) { text = Bytes(rebasing: text[5...]) }
        switch String(decoding: text, as: UTF8.self) {
        case "1.0": return 1
        case "1.1": return 2
        case "2", "2.0": return 3
        case "3", "3.0": return 4
        default: return nil
        }
    }
}
