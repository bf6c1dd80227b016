import CEnvoyProtos

/// Writes one readable line per entry:
/// `2026-11-27T07:18:08.123456Z outbound productpage-v1.default → reviews.default:9080 GET reviews:9080/reviews/0 200 12.345ms UH`
struct TextLineEncoder {
    let out: ByteWriter
    let flagCodes: ResponseFlagCodes

    func http(_ entry: UnsafePointer<CHTTPEntry>, view: EntryView, reporter: Reporter) {
        let common = view.common
        prefix(view, reporter: reporter)
        if let request = entry.pointee.request?.pointee {
            out.append(UInt8(ascii: " "))
            if let method = JSONLineEncoder.methodName(request.request_method.rawValue) { out.append(method) } else {
                out.append(UInt8(ascii: "-"))
            }
            out.append(UInt8(ascii: " "))
            if let authority = present(request.authority) { out.appendEscaped(authority, mode: .text) }
            if let path = present(request.path) { out.appendEscaped(path, mode: .text) }
        }
        out.append(UInt8(ascii: " "))
        if let code = entry.pointee.response?.pointee.response_code {
            out.appendDecimal(UInt64(code.pointee.value))
        } else {
            out.append(UInt8(ascii: "-"))
        }
        suffix(common)
    }

    func tcp(_ entry: UnsafePointer<CTCPEntry>, view: EntryView, reporter: Reporter) {
        let common = view.common
        prefix(view, reporter: reporter)
        out.append(" TCP")
        if let connection = entry.pointee.connection_properties?.pointee {
            out.append(" rx=")
            out.appendDecimal(connection.received_bytes)
            out.append(" tx=")
            out.appendDecimal(connection.sent_bytes)
        }
        suffix(common)
    }

    /// time, direction, source → destination.
    private func prefix(_ view: EntryView, reporter: Reporter) {
        let c = view.common?.pointee
        if let start = c?.start_time {
            out.appendTimestamp(seconds: start.pointee.seconds, nanos: start.pointee.nanos)
        } else {
            out.append(UInt8(ascii: "-"))
        }
        out.append(UInt8(ascii: " "))
        out.append(view.direction.jsonName)
        out.append(UInt8(ascii: " "))
        switch view.direction {
        case .outbound:
            out.append(reporter.textLabel)
            out.append(" → ")
            if !appendLabel(view.peer, port: view.cluster.port),
               !out.appendAddress(c?.upstream_remote_address, mode: .text) {
                out.append(UInt8(ascii: "-"))
            }
        case .inbound:
            if !appendLabel(view.peer, port: nil), !out.appendAddress(c?.downstream_remote_address, mode: .text) {
                out.append(UInt8(ascii: "-"))
            }
            out.append(" → ")
            out.append(reporter.textLabel)
        case .unknown:
            if !out.appendAddress(c?.downstream_remote_address, mode: .text) { out.append(UInt8(ascii: "-")) }
            out.append(" → ")
            if !out.appendAddress(c?.upstream_remote_address, mode: .text) { out.append(reporter.textLabel) }
        }
    }

    /// `workload.namespace`, else `service.namespace:port`; false when the peer has neither.
    private func appendLabel(_ peer: Identity, port: UnsafeBufferPointer<UInt8>?) -> Bool {
        guard let name = peer.workload ?? peer.service else { return false }
        out.appendEscaped(name, mode: .text)
        if let namespace = peer.namespace {
            out.append(UInt8(ascii: "."))
            out.appendEscaped(namespace, mode: .text)
        }
        if peer.workload == nil, let port {
            out.append(UInt8(ascii: ":"))
            out.appendEscaped(port, mode: .text)
        }
        return true
    }

    /// total duration and response flags, then the newline.
    private func suffix(_ common: UnsafePointer<CCommon>?) {
        if let total = common?.pointee.duration {
            out.append(UInt8(ascii: " "))
            out.appendMilliseconds(seconds: total.pointee.seconds, nanos: total.pointee.nanos)
            out.append("ms")
        }
        if let flags = common?.pointee.response_flags {
            var first = true
            flagCodes.forEachSet(flags) { code in
                out.append(first ? UInt8(ascii: " ") : UInt8(ascii: ","))
                first = false
                out.append(code)
            }
        }
        out.append(UInt8(ascii: "\n"))
    }
}
