import CEnvoyProtos

/// Writes one JSON object per entry, straight from the protobuf-c structs (schema in README).
public struct JSONLineEncoder {
    let out: ByteWriter
    let flagCodes: ResponseFlagCodes
    /// Lowercased names of headers whose values are replaced by `[redacted]`.
    let redactedHeaders: [[UInt8]]

    /// Writes the line; returns where its source, destination and request objects are.
    /// `members`: while a masked subscriber reads JSON, where the line's top-level members start.
    /// `keep`: the top-level members written (all, unless only masked subscribers read JSON).
    @discardableResult
    func http(_ entry: UnsafePointer<CHTTPEntry>, view: EntryView, reporter: Reporter,
              members: Unmanaged<MemberMarks>? = nil, keep: JSONMembers = .all) -> JSONSections {
        let common = view.common
        let lineStart = out.count
        var object = JSONObjectWriter(out)
        object.members = members
        var sections = header(&object, type: "http", view: view, reporter: reporter, lineStart: lineStart, keep: keep)
        if keep.contains(.request), let request = entry.pointee.request {
            let before = out.count
            defer { sections.request = valueRange(after: before, lineStart: lineStart) }
            object.nested("request") { r in
                let request = request.pointee
                r.string("id", request.request_id)
                if let method = Self.methodName(request.request_method.rawValue) { r.literal("method", method) }
                r.string("scheme", request.scheme)
                r.string("authority", request.authority)
                if let port = request.port { r.number("port", UInt64(port.pointee.value)) }
                r.string("path", request.path)
                r.string("originalPath", request.original_path)
                r.string("userAgent", request.user_agent)
                r.string("referer", request.referer)
                r.string("forwardedFor", request.forwarded_for)
                r.number("headerBytes", request.request_headers_bytes)
                r.number("bodyBytes", request.request_body_bytes)
                headers(&r, "headers", count: request.n_request_headers, request.request_headers)
            }
        }
        if keep.contains(.response) { object.nested("response") { r in
            if let response = entry.pointee.response {
                let response = response.pointee
                if let code = response.response_code { r.number("code", UInt64(code.pointee.value)) }
                r.string("codeDetails", response.response_code_details)
                flags(&r, common)
                r.number("headerBytes", response.response_headers_bytes)
                r.number("bodyBytes", response.response_body_bytes)
                headers(&r, "headers", count: response.n_response_headers, response.response_headers)
                headers(&r, "trailers", count: response.n_response_trailers, response.response_trailers)
            } else {
                flags(&r, common)
            }
        } }
        trailer(&object, common: common, keep: keep)
        if keep.contains(.protocol), let version = Self.protocolName(entry.pointee.protocol_version.rawValue) {
            object.literal("protocol", version)
        }
        object.close()
        out.append(UInt8(ascii: "\n"))
        return sections
    }

    @discardableResult
    func tcp(_ entry: UnsafePointer<CTCPEntry>, view: EntryView, reporter: Reporter,
             members: Unmanaged<MemberMarks>? = nil, keep: JSONMembers = .all) -> JSONSections {
        let common = view.common
        let lineStart = out.count
        var object = JSONObjectWriter(out)
        object.members = members
        let sections = header(&object, type: "tcp", view: view, reporter: reporter, lineStart: lineStart, keep: keep)
        if keep.contains(.response) { object.nested("response") { flags(&$0, common) } }
        trailer(&object, common: common, keep: keep)
        if keep.contains(.connection), let connection = entry.pointee.connection_properties {
            object.nested("connection") { c in
                c.number("receivedBytes", connection.pointee.received_bytes)
                c.number("sentBytes", connection.pointee.sent_bytes)
            }
        }
        object.close()
        out.append(UInt8(ascii: "\n"))
        return sections
    }

    /// The range of the object value written after `start` (`"key":{...}`), relative to the line.
    private func valueRange(after start: Int, lineStart: Int) -> Range<UInt32> {
        guard out.count > start, let brace = (start..<out.count).first(where: { out.base[$0] == UInt8(ascii: "{") })
        else { return 0..<0 }
        return UInt32(brace - lineStart)..<UInt32(out.count - lineStart)
    }

    /// time, type, logName, reporter, direction, source, destination.
    private func header(_ object: inout JSONObjectWriter, type: StaticString, view: EntryView, reporter: Reporter,
                        lineStart: Int, keep: JSONMembers) -> JSONSections {
        var sections = JSONSections()
        let common = view.common
        if let start = common?.pointee.start_time {
            object.key("time")
            out.append(UInt8(ascii: "\""))
            out.appendTimestamp(seconds: start.pointee.seconds, nanos: start.pointee.nanos)
            out.append(UInt8(ascii: "\""))
        }
        object.literal("type", type)
        // The fragment holds two members (`logName` when there is one, `reporter`), each
        // starting with a comma (`"type"` always precedes them).
        let split = reporter.reporterMemberOffset
        let fragment = (keep.contains(.logName) ? 0 : split)..<(keep.contains(.reporter) ? reporter.jsonFragment.count : split)
        object.members?._withUnsafeGuaranteedRef { members in
            if fragment.lowerBound < split { members.offsets.append(UInt32(out.count)) }
            if fragment.upperBound > split { members.offsets.append(UInt32(out.count + split - fragment.lowerBound)) }
        }
        reporter.jsonFragment.withUnsafeBytes { out.append(UnsafeRawBufferPointer(rebasing: $0[fragment])) }
        if keep.contains(.direction) { object.literal("direction", view.direction.jsonName) }
        guard let common else { return sections }
        let c = common.pointee
        var before = out.count
        if keep.contains(.source) { object.nested("source") { s in
            s.address("address", c.downstream_remote_address)
            switch view.direction {
            case .outbound: identity(&s, reporter)
            case .inbound: identity(&s, view.peer)
            case .unknown: break
            }
        } }
        sections.source = valueRange(after: before, lineStart: lineStart)
        before = out.count
        if keep.contains(.destination) { object.nested("destination") { d in
            switch view.direction {
            case .inbound:
                d.address("address", c.downstream_local_address)
                identity(&d, reporter)
            case .outbound:
                d.address("address", c.upstream_remote_address)
                identity(&d, view.peer)
                d.string("host", bytes: view.cluster.host)
                d.integer("port", digits: view.cluster.port)
                d.string("subset", bytes: view.cluster.subset)
            case .unknown:
                d.address("address", c.upstream_remote_address)
            }
        } }
        sections.destination = valueRange(after: before, lineStart: lineStart)
        return sections
    }

    private func identity(_ object: inout JSONObjectWriter, _ reporter: Reporter) {
        guard !reporter.identityJSON.isEmpty else { return }
        if !object.isEmpty { out.append(UInt8(ascii: ",")) }
        out.append(reporter.identityJSON)
        object.markNonEmpty()
    }

    private func identity(_ object: inout JSONObjectWriter, _ peer: Identity) {
        object.string("workload", bytes: peer.workload)
        object.string("namespace", bytes: peer.namespace)
        object.string("pod", bytes: peer.pod)
        object.string("service", bytes: peer.service)
    }

    /// upstream, durations, route, tls and the remaining common properties.
    private func trailer(_ object: inout JSONObjectWriter, common: UnsafePointer<CCommon>?, keep: JSONMembers) {
        guard let common else { return }
        let c = common.pointee
        if keep.contains(.upstream) { object.nested("upstream") { u in
            u.string("cluster", c.upstream_cluster)
            u.address("host", c.upstream_remote_address)
            u.address("localAddress", c.upstream_local_address)
            u.string("transportFailureReason", c.upstream_transport_failure_reason)
            u.nonZero("attemptCount", UInt64(c.upstream_request_attempt_count))
        } }
        if keep.contains(.durations) { object.nested("durations") { d in
            duration(&d, "lastRxByte", c.time_to_last_rx_byte)
            duration(&d, "firstUpstreamTxByte", c.time_to_first_upstream_tx_byte)
            duration(&d, "lastUpstreamTxByte", c.time_to_last_upstream_tx_byte)
            duration(&d, "firstUpstreamRxByte", c.time_to_first_upstream_rx_byte)
            duration(&d, "lastUpstreamRxByte", c.time_to_last_upstream_rx_byte)
            duration(&d, "firstDownstreamTxByte", c.time_to_first_downstream_tx_byte)
            duration(&d, "lastDownstreamTxByte", c.time_to_last_downstream_tx_byte)
            duration(&d, "total", c.duration)
        } }
        if keep.contains(.route) { object.string("route", c.route_name) }
        if keep.contains(.downstreamDirectRemoteAddress) {
            object.address("downstreamDirectRemoteAddress", c.downstream_direct_remote_address)
        }
        if keep.contains(.downstreamTransportFailureReason) {
            object.string("downstreamTransportFailureReason", c.downstream_transport_failure_reason)
        }
        if keep.contains(.connectionTerminationDetails) {
            object.string("connectionTerminationDetails", c.connection_termination_details)
        }
        if keep.contains(.streamId) { object.string("streamId", c.stream_id) }
        if keep.contains(.tls), let tls = c.tls_properties { self.tls(&object, tls) }
        if c.n_custom_tags > 0 { customTags(&object, count: c.n_custom_tags, c.custom_tags, keep: keep) }
        if keep.contains(.filterState), c.n_filter_state_objects > 0 { filterState(&object, c) }
    }

    private func filterState(_ object: inout JSONObjectWriter, _ c: CCommon) {
        object.nested("filterState") { f in
            for i in 0..<c.n_filter_state_objects {
                guard let entry = c.filter_state_objects[i], let key = present(entry.pointee.key) else { continue }
                f.key(cString: key)
                var value = JSONObjectWriter(out)
                value.string("@type", entry.pointee.value?.pointee.type_url)
                value.close()
            }
        }
    }

    /// Custom tags, but those an OTLP record's trace context and unread body became (see
    /// ALSTapOTLP's `ALSEntryWriter`): those are the line's `traceId`, `spanId` and `body`.
    private func customTags(_ object: inout JSONObjectWriter, count: Int, _ tags: UnsafeMutablePointer<UnsafeMutablePointer<CCustomTag>?>?,
                            keep: JSONMembers) {
        guard let tags else { return }
        var others = 0
        for i in 0..<count {
            guard let tag = tags[i], let key = present(tag.pointee.key) else { continue }
            let name: StaticString? = if cStringEquals(key, "otel.trace_id") { keep.contains(.traceId) ? "traceId" : nil }
                else if cStringEquals(key, "otel.span_id") { keep.contains(.spanId) ? "spanId" : nil }
                else if cStringEquals(key, "otel.body") { keep.contains(.body) ? "body" : nil } else { nil }
            guard let name else {
                if !cStringHasPrefix(key, "otel.") { others += 1 }
                continue
            }
            object.string(name, tag.pointee.value)
        }
        guard others > 0, keep.contains(.customTags) else { return }
        object.nested("customTags") { h in
            for i in 0..<count {
                guard let tag = tags[i], let key = present(tag.pointee.key), !cStringHasPrefix(key, "otel.") else { continue }
                h.key(cString: key)
                if let value = tag.pointee.value { out.appendJSONString(value) } else { out.append("\"\"") }
            }
        }
    }

    private func tls(_ object: inout JSONObjectWriter, _ tls: UnsafePointer<CTLS>) {
        object.nested("tls") { t in
            let p = tls.pointee
            if let version = Self.tlsVersionName(p.tls_version.rawValue) { t.literal("version", version) }
            if let suite = p.tls_cipher_suite { t.number("cipherSuite", UInt64(suite.pointee.value)) }
            t.string("sni", p.tls_sni_hostname)
            t.string("sessionId", p.tls_session_id)
            t.string("ja3Fingerprint", p.ja3_fingerprint)
            certificate(&t, "localCertificate", p.local_certificate_properties)
            certificate(&t, "peerCertificate", p.peer_certificate_properties)
        }
    }

    private func certificate(_ object: inout JSONObjectWriter, _ name: StaticString,
                             _ certificate: UnsafePointer<CCertificate>?) {
        guard let certificate else { return }
        object.nested(name) { c in
            let p = certificate.pointee
            c.string("subject", p.subject)
            c.string("issuer", p.issuer)
            guard p.n_subject_alt_name > 0 else { return }
            c.key("subjectAltNames")
            out.append(UInt8(ascii: "["))
            var first = true
            for i in 0..<p.n_subject_alt_name {
                guard let san = p.subject_alt_name[i] else { continue }
                let value = san.pointee.san_case.rawValue == 1 ? san.pointee.uri : san.pointee.dns
                guard let value = present(value) else { continue }
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                out.appendJSONString(value)
            }
            out.append(UInt8(ascii: "]"))
        }
    }

    private func flags(_ object: inout JSONObjectWriter, _ common: UnsafePointer<CCommon>?) {
        guard let flags = common?.pointee.response_flags else { return }
        object.member("flags") { out in
            out.append(UInt8(ascii: "["))
            var count = 0
            flagCodes.forEachSet(flags) { code in
                if count > 0 { out.append(UInt8(ascii: ",")) }
                count += 1
                out.append(UInt8(ascii: "\""))
                out.append(code)
                out.append(UInt8(ascii: "\""))
            }
            out.append(UInt8(ascii: "]"))
            return count > 0
        }
    }

    private func duration(_ object: inout JSONObjectWriter, _ name: StaticString, _ value: UnsafePointer<CDuration>?) {
        guard let value else { return }
        object.key(name)
        out.appendMilliseconds(seconds: value.pointee.seconds, nanos: value.pointee.nanos)
    }

    /// A protobuf map<string,string> (repeated key/value entries) as a JSON object.
    private func headers<Entry: KeyValueEntry>(_ object: inout JSONObjectWriter, _ name: StaticString, count: Int,
                                               _ entries: UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>?) {
        guard count > 0, let entries else { return }
        object.nested(name) { h in
            for i in 0..<count {
                guard let entry = entries[i], let key = present(entry.pointee.key) else { continue }
                h.key(cString: key)
                if Self.isRedacted(key, redactedHeaders) {
                    out.append(UInt8(ascii: "\""))
                    out.append(Self.redactedValue)
                    out.append(UInt8(ascii: "\""))
                } else if let value = entry.pointee.value {
                    out.appendJSONString(value)
                } else {
                    out.append("\"\"")
                }
            }
        }
    }

    /// Whether `key` is one of `redactedHeaders` (lowercased). Header names compare without
    /// regard to case (Envoy logs them lowercased already).
    static func isRedacted(_ key: UnsafePointer<CChar>, _ redactedHeaders: [[UInt8]]) -> Bool {
        redactedHeaders.isEmpty ? false : isRedacted(utf8Bytes(key), redactedHeaders)
    }

    static func isRedacted<Name: Collection<UInt8>>(_ name: Name, _ redactedHeaders: [[UInt8]]) -> Bool {
        redactedHeaders.contains { redacted in
            redacted.count == name.count && zip(redacted, name).allSatisfy { $0 == ($1 >= 65 && $1 <= 90 ? $1 + 32 : $1) }
        }
    }

    /// What a redacted header's value becomes (in the JSON and in the filter facts).
    static let redactedValue = Array("[redacted]".utf8)

    public static func methodName(_ raw: UInt32) -> StaticString? {
        switch raw {
        case 1: "GET"
        case 2: "HEAD"
        case 3: "POST"
        case 4: "PUT"
        case 5: "DELETE"
        case 6: "CONNECT"
        case 7: "OPTIONS"
        case 8: "TRACE"
        case 9: "PATCH"
        default: nil
        }
    }

    static func protocolName(_ raw: UInt32) -> StaticString? {
        switch raw {
        case 1: "HTTP/1.0"
        case 2: "HTTP/1.1"
        case 3: "HTTP/2"
        case 4: "HTTP/3"
        default: nil
        }
    }

    static func tlsVersionName(_ raw: UInt32) -> StaticString? {
        switch raw {
        case 1: "TLSv1"
        case 2: "TLSv1.1"
        case 3: "TLSv1.2"
        case 4: "TLSv1.3"
        default: nil
        }
    }
}

/// The key/value entry structs protoc-c generates for map<string, string> fields.
/// A protobuf-c map entry of strings (headers, custom tags); `value` is set by `ALSRedaction`.
protocol KeyValueEntry {
    var key: UnsafeMutablePointer<CChar>! { get }
    var value: UnsafeMutablePointer<CChar>! { get set }
}

extension Envoy__Data__Accesslog__V3__HTTPRequestProperties__RequestHeadersEntry: KeyValueEntry {}
extension Envoy__Data__Accesslog__V3__HTTPResponseProperties__ResponseHeadersEntry: KeyValueEntry {}
extension Envoy__Data__Accesslog__V3__HTTPResponseProperties__ResponseTrailersEntry: KeyValueEntry {}
extension Envoy__Data__Accesslog__V3__AccessLogCommon__CustomTagsEntry: KeyValueEntry {}
