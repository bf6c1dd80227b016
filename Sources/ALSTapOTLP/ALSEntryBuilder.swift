import ALSTapALS
import CEnvoyProtos
import CProtobufC

typealias CCommonProperties = Envoy__Data__Accesslog__V3__AccessLogCommon
typealias CRequestProperties = Envoy__Data__Accesslog__V3__HTTPRequestProperties
typealias CResponseProperties = Envoy__Data__Accesslog__V3__HTTPResponseProperties
typealias CSocketAddressStruct = Envoy__Config__Core__V3__SocketAddress
typealias CAddressStruct = Envoy__Config__Core__V3__Address
typealias CTCPEntry = Envoy__Data__Accesslog__V3__TCPAccessLogEntry

/// Builds `AccessFields` as Envoy's `HTTPAccessLogEntry` (envoy.data.accesslog.v3) in protobuf-c's
/// own structs, so an OTLP record is encoded, filtered, paired, aggregated and replayed by the code
/// that serves ALS (`ALSDecoder.encode(built:)`): one representation of an entry behind every
/// consumer, and no second unpack. The structs live in the translator's arena.
struct ALSEntryBuilder {
    var arena: ArenaAllocation
    /// Scratch for the bytes of the peers' metadata (a google.protobuf.Struct inside an Any).
    let scratch: ByteWriter

    /// Custom tags alstap reads back as the JSON's `traceId`, `spanId` and `body`.
    static let traceIdTag: StaticString = "otel.trace_id"
    static let spanIdTag: StaticString = "otel.span_id"
    static let bodyTag: StaticString = "otel.body"

    static let upstreamPeerKey: StaticString = "upstream_peer"
    static let downstreamPeerKey: StaticString = "downstream_peer"

    /// Where attributes alstap has no field for go: custom tags, or logged headers.
    enum ExtraPlace {
        case common, request, response
    }

    /// An attribute without a field of its own: its name (the header's, past the prefix) and text.
    typealias Extra = (place: ExtraPlace, name: Bytes, value: Bytes)

    mutating func entry(_ f: AccessFields, extras: [Extra]) -> UnsafeMutablePointer<CHTTPEntry> {
        let entry: UnsafeMutablePointer<CHTTPEntry> = arena.message { envoy__data__accesslog__v3__httpaccess_log_entry__init($0) }
        entry.pointee.common_properties = common(f, extras: extras)
        if let version = Self.protocolVersion(f.protocolVersion) {
            entry.pointee.protocol_version = Envoy__Data__Accesslog__V3__HTTPAccessLogEntry__HTTPVersion(rawValue: version)
        }
        entry.pointee.request = request(f, extras: extras)
        entry.pointee.response = response(f, extras: extras)
        return entry
    }

    /// A TCP connection's record (`AccessFields.isTCP`) as Envoy's `TCPAccessLogEntry`.
    mutating func tcpEntry(_ f: AccessFields, extras: [Extra]) -> UnsafeMutablePointer<CTCPEntry> {
        let entry: UnsafeMutablePointer<CTCPEntry> = arena.message { envoy__data__accesslog__v3__tcpaccess_log_entry__init($0) }
        entry.pointee.common_properties = common(f, extras: extras)
        let connection: UnsafeMutablePointer<Envoy__Data__Accesslog__V3__ConnectionProperties> = arena.message {
            envoy__data__accesslog__v3__connection_properties__init($0)
        }
        connection.pointee.received_bytes = f.requestBodyBytes ?? 0
        connection.pointee.sent_bytes = f.responseBodyBytes ?? 0
        entry.pointee.connection_properties = connection
        return entry
    }

    private mutating func common(_ f: AccessFields, extras: [Extra]) -> UnsafeMutablePointer<CCommonProperties> {
        let c: UnsafeMutablePointer<CCommonProperties> = arena.message { envoy__data__accesslog__v3__access_log_common__init($0) }
        c.pointee.downstream_remote_address = address(f.downstreamRemoteAddress)
        c.pointee.downstream_local_address = address(f.downstreamLocalAddress)
        if let sni = f.requestedServerName {
            let tls: UnsafeMutablePointer<Envoy__Data__Accesslog__V3__TLSProperties> = arena.message {
                envoy__data__accesslog__v3__tlsproperties__init($0)
            }
            tls.pointee.tls_sni_hostname = arena.string(sni)
            c.pointee.tls_properties = tls
        }
        if f.startNanos > 0 {
            let time: UnsafeMutablePointer<Google__Protobuf__Timestamp> = arena.message { google__protobuf__timestamp__init($0) }
            time.pointee.seconds = Int64(f.startNanos / 1_000_000_000)
            time.pointee.nanos = Int32(f.startNanos % 1_000_000_000)
            c.pointee.start_time = time
        }
        c.pointee.time_to_last_rx_byte = duration(f.lastRxByteUs)
        c.pointee.time_to_first_upstream_tx_byte = duration(f.firstUpstreamTxByteUs)
        c.pointee.time_to_last_upstream_tx_byte = duration(f.lastUpstreamTxByteUs)
        c.pointee.time_to_first_upstream_rx_byte = duration(f.firstUpstreamRxByteUs)
        c.pointee.time_to_last_upstream_rx_byte = duration(f.lastUpstreamRxByteUs)
        c.pointee.time_to_first_downstream_tx_byte = duration(f.firstDownstreamTxByteUs)
        c.pointee.time_to_last_downstream_tx_byte = duration(f.lastDownstreamTxByteUs)
        c.pointee.duration = duration(f.durationUs)
        c.pointee.upstream_remote_address = address(f.upstreamHost)
        c.pointee.upstream_local_address = address(f.upstreamLocalAddress)
        c.pointee.downstream_direct_remote_address = address(f.downstreamDirectRemoteAddress)
        if let cluster = f.upstreamCluster { c.pointee.upstream_cluster = arena.string(cluster) }
        if let flags = f.responseFlags { c.pointee.response_flags = responseFlags(flags) }
        if let reason = f.upstreamTransportFailureReason { c.pointee.upstream_transport_failure_reason = arena.string(reason) }
        if let route = f.routeName { c.pointee.route_name = arena.string(route) }
        if let details = f.connectionTerminationDetails { c.pointee.connection_termination_details = arena.string(details) }
        if let stream = f.streamId { c.pointee.stream_id = arena.string(stream) }
        if let count = f.attemptCount { c.pointee.upstream_request_attempt_count = UInt32(clamping: count) }

        let peerCount = (f.upstreamPeer.isEmpty ? 0 : 1) + (f.downstreamPeer.isEmpty ? 0 : 1)
        if peerCount > 0 {
            typealias Entry = Envoy__Data__Accesslog__V3__AccessLogCommon__FilterStateObjectsEntry
            let array: UnsafeMutablePointer<UnsafeMutablePointer<Entry>?> = arena.pointers(peerCount)
            var i = 0
            func add(_ key: StaticString, _ peer: PeerFields) {
                guard !peer.isEmpty else { return }
                let entry: UnsafeMutablePointer<Entry> = arena.message {
                    envoy__data__accesslog__v3__access_log_common__filter_state_objects_entry__init($0)
                }
                entry.pointee.key = arena.string(staticBytes(key))
                entry.pointee.value = peerMetadata(peer)
                array[i] = entry
                i += 1
            }
            add(Self.upstreamPeerKey, f.upstreamPeer)
            add(Self.downstreamPeerKey, f.downstreamPeer)
            c.pointee.n_filter_state_objects = peerCount
            c.pointee.filter_state_objects = array
        }

        let tagCount = (f.traceId == nil ? 0 : 1) + (f.spanId == nil ? 0 : 1) + (f.body == nil ? 0 : 1)
            + extras.count(where: { $0.place == .common })
        if tagCount > 0 {
            typealias Entry = Envoy__Data__Accesslog__V3__AccessLogCommon__CustomTagsEntry
            let array: UnsafeMutablePointer<UnsafeMutablePointer<Entry>?> = arena.pointers(tagCount)
            var i = 0
            func tag(_ key: Bytes, _ value: Bytes, hex: Bool = false) {
                let entry: UnsafeMutablePointer<Entry> = arena.message {
                    envoy__data__accesslog__v3__access_log_common__custom_tags_entry__init($0)
                }
                entry.pointee.key = arena.string(key)
                entry.pointee.value = hex ? hexString(value) : arena.string(value)
                array[i] = entry
                i += 1
            }
            if let trace = f.traceId { tag(staticBytes(Self.traceIdTag), trace, hex: true) }
            if let span = f.spanId { tag(staticBytes(Self.spanIdTag), span, hex: true) }
            if let body = f.body { tag(staticBytes(Self.bodyTag), body) }
            for extra in extras where extra.place == .common { tag(extra.name, extra.value) }
            c.pointee.n_custom_tags = tagCount
            c.pointee.custom_tags = array
        }
        return c
    }

    private mutating func request(_ f: AccessFields, extras: [Extra]) -> UnsafeMutablePointer<CRequestProperties> {
        let r: UnsafeMutablePointer<CRequestProperties> = arena.message { envoy__data__accesslog__v3__httprequest_properties__init($0) }
        if let method = f.method, let number = Self.methodNumber(method) {
            r.pointee.request_method = Envoy__Config__Core__V3__RequestMethod(rawValue: UInt32(number))
        }
        if let scheme = f.scheme { r.pointee.scheme = arena.string(scheme) }
        if let authority = f.authority { r.pointee.authority = arena.string(authority) }
        if let path = f.path {
            if let query = f.query, !path.contains(UInt8(ascii: "?")) {
                scratch.removeAll()
                scratch.append(UnsafeRawBufferPointer(path))
                scratch.append(UInt8(ascii: "?"))
                scratch.append(UnsafeRawBufferPointer(query))
                r.pointee.path = arena.string(UnsafeBufferPointer(start: scratch.base, count: scratch.count))
            } else {
                r.pointee.path = arena.string(path)
            }
        }
        if let agent = f.userAgent { r.pointee.user_agent = arena.string(agent) }
        if let referer = f.referer { r.pointee.referer = arena.string(referer) }
        if let forwarded = f.forwardedFor { r.pointee.forwarded_for = arena.string(forwarded) }
        if let id = f.requestId { r.pointee.request_id = arena.string(id) }
        if let original = f.originalPath { r.pointee.original_path = arena.string(original) }
        r.pointee.request_headers_bytes = f.requestHeaderBytes ?? 0
        r.pointee.request_body_bytes = f.requestBodyBytes ?? 0
        (r.pointee.n_request_headers, r.pointee.request_headers) = headers(.request, extras) {
            envoy__data__accesslog__v3__httprequest_properties__request_headers_entry__init($0)
        }
        return r
    }

    private mutating func response(_ f: AccessFields, extras: [Extra]) -> UnsafeMutablePointer<CResponseProperties> {
        let r: UnsafeMutablePointer<CResponseProperties> = arena.message { envoy__data__accesslog__v3__httpresponse_properties__init($0) }
        if let code = f.code, code > 0 {
            let value: UnsafeMutablePointer<Google__Protobuf__UInt32Value> = arena.message { google__protobuf__uint32_value__init($0) }
            value.pointee.value = UInt32(clamping: code)
            r.pointee.response_code = value
        }
        r.pointee.response_headers_bytes = f.responseHeaderBytes ?? 0
        r.pointee.response_body_bytes = f.responseBodyBytes ?? 0
        if let details = f.codeDetails { r.pointee.response_code_details = arena.string(details) }
        (r.pointee.n_response_headers, r.pointee.response_headers) = headers(.response, extras) {
            envoy__data__accesslog__v3__httpresponse_properties__response_headers_entry__init($0)
        }
        return r
    }

    /// The logged headers `extras` has for `place`, as a map<string, string> field's entries
    /// (protobuf-c's request and response header entries share a layout but not a type).
    private mutating func headers<Entry: MapEntry>(_ place: ExtraPlace, _ extras: [Extra],
                                                  initialize: (UnsafeMutablePointer<Entry>) -> Void)
        -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>?) {
        let count = extras.count(where: { $0.place == place })
        guard count > 0 else { return (0, nil) }
        let array: UnsafeMutablePointer<UnsafeMutablePointer<Entry>?> = arena.pointers(count)
        var i = 0
        for extra in extras where extra.place == place {
            let entry: UnsafeMutablePointer<Entry> = arena.message(initialize)
            entry.pointee.key = arena.string(extra.name)
            entry.pointee.value = arena.string(extra.value)
            array[i] = entry
            i += 1
        }
        return (count, array)
    }

    private mutating func duration(_ microseconds: UInt64?) -> UnsafeMutablePointer<Google__Protobuf__Duration>? {
        guard let microseconds else { return nil }
        let d: UnsafeMutablePointer<Google__Protobuf__Duration> = arena.message { google__protobuf__duration__init($0) }
        d.pointee.seconds = Int64(microseconds / 1_000_000)
        d.pointee.nanos = Int32(microseconds % 1_000_000 * 1000)
        return d
    }

    /// `10.0.0.1:8080`, `[::1]:8080` or a bare host as an Address's SocketAddress; a path
    /// (`/run/x.sock`, `@abstract`) as its Pipe.
    private mutating func address(_ text: Bytes?) -> UnsafeMutablePointer<CAddressStruct>? {
        guard let text, let first = text.first else { return nil }
        let a: UnsafeMutablePointer<CAddressStruct> = arena.message { envoy__config__core__v3__address__init($0) }
        if first == UInt8(ascii: "/") || first == UInt8(ascii: "@") {
            let pipe: UnsafeMutablePointer<Envoy__Config__Core__V3__Pipe> = arena.message { envoy__config__core__v3__pipe__init($0) }
            pipe.pointee.path = arena.string(text)
            a.pointee.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE
            a.pointee.pipe = pipe
            return a
        }
        var host = text
        var port: UInt64?
        if first == UInt8(ascii: "["), let close = text.firstIndex(of: UInt8(ascii: "]")) {
            host = Bytes(rebasing: text[1..<close])
            if close + 1 < text.count, text[close + 1] == UInt8(ascii: ":") {
                port = decimal(Bytes(rebasing: text[(close + 2)...]))
            }
        } else if let colon = text.lastIndex(of: UInt8(ascii: ":")), text.firstIndex(of: UInt8(ascii: ":")) == colon,
                  let number = decimal(Bytes(rebasing: text[(colon + 1)...])) {
            host = Bytes(rebasing: text[..<colon])
            port = number
        }
        let socket: UnsafeMutablePointer<CSocketAddressStruct> = arena.message { envoy__config__core__v3__socket_address__init($0) }
        socket.pointee.address = arena.string(host)
        if let port, port > 0, port <= 65535 {
            socket.pointee.port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE
            socket.pointee.port_value = UInt32(port)
        }
        a.pointee.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS
        a.pointee.socket_address = socket
        return a
    }

    /// Envoy's short codes (`UH,UF`) as ResponseFlags' bools; unknown codes are dropped.
    private mutating func responseFlags(_ codes: Bytes) -> UnsafeMutablePointer<Envoy__Data__Accesslog__V3__ResponseFlags> {
        let flags: UnsafeMutablePointer<Envoy__Data__Accesslog__V3__ResponseFlags> = arena.message {
            envoy__data__accesslog__v3__response_flags__init($0)
        }
        let raw = UnsafeMutableRawPointer(flags)
        var start = 0
        for end in 0...codes.count where end == codes.count || codes[end] == UInt8(ascii: ",") {
            defer { start = end + 1 }
            guard end > start, let number = ResponseFlagCodes.fieldNumber(of: Bytes(rebasing: codes[start..<end])),
                  let layout = ResponseFlagCodes.layout(ofField: number) else { continue }
            if layout.isMessage {  // unauthorized_details: present means UAEX
                let details: UnsafeMutablePointer<Envoy__Data__Accesslog__V3__ResponseFlags__Unauthorized> = arena.message {
                    envoy__data__accesslog__v3__response_flags__unauthorized__init($0)
                }
                raw.storeBytes(of: UnsafeMutableRawPointer(details), toByteOffset: layout.offset, as: UnsafeMutableRawPointer.self)
            } else {
                raw.storeBytes(of: 1, toByteOffset: layout.offset, as: protobuf_c_boolean.self)
            }
        }
        return flags
    }

    /// Istio's peer metadata as sidecars log it: an Any holding a google.protobuf.Struct with the
    /// workload, namespace, name and service keys (what `EntryView` reads).
    private mutating func peerMetadata(_ peer: PeerFields) -> UnsafeMutablePointer<Google__Protobuf__Any> {
        scratch.removeAll()
        let proto = ProtoWriter(scratch)
        func field(_ key: StaticString, _ value: Bytes?) {
            guard let value else { return }
            proto.message(1) {
                proto.bytes(1, key)
                proto.message(2) { proto.bytes(3, value) }  // Value.string_value
            }
        }
        field("workload", peer.workload)
        field("namespace", peer.namespace)
        field("name", peer.name)
        field("service", peer.service)
        let any: UnsafeMutablePointer<Google__Protobuf__Any> = arena.message { google__protobuf__any__init($0) }
        any.pointee.type_url = arena.string(staticBytes("type.googleapis.com/google.protobuf.Struct"))
        let bytes = arena.string(UnsafeBufferPointer(start: scratch.base, count: scratch.count))
        any.pointee.value = ProtobufCBinaryData(len: scratch.count,
                                                data: UnsafeMutableRawPointer(bytes).assumingMemoryBound(to: UInt8.self))
        return any
    }

    private mutating func hexString(_ raw: Bytes) -> UnsafeMutablePointer<CChar> {
        scratch.removeAll()
        let digits: StaticString = "0123456789abcdef"
        for byte in raw {
            scratch.append(digits.utf8Start[Int(byte >> 4)])
            scratch.append(digits.utf8Start[Int(byte & 15)])
        }
        return arena.string(UnsafeBufferPointer(start: scratch.base, count: scratch.count))
    }

    static func methodNumber(_ method: Bytes) -> UInt64? {
        for raw in UInt32(1)...9 {
            if let name = JSONLineEncoder.methodName(raw),
               name.utf8CodeUnitCount == method.count, staticBytes(name).elementsEqual(method) {
                return UInt64(raw)
            }
        }
        return nil
    }

    /// HTTPVersion from `HTTP/1.1` or a bare `1.1`.
    static func protocolVersion(_ text: Bytes?) -> UInt32? {
        guard var text else { return nil }
        if text.count > 5, text[0] == UInt8(ascii: "H"), text[4] == UInt8(ascii: "/") { text = Bytes(rebasing: text[5...]) }
        let zero = UInt8(ascii: "0"), dot = UInt8(ascii: ".")
        guard let major = text.first, major >= UInt8(ascii: "1"), major <= UInt8(ascii: "3") else { return nil }
        let minor: UInt8? = text.count == 3 && text[1] == dot ? text[2] : text.count == 1 ? zero : nil
        switch (major - zero, minor) {
        case (1, UInt8(ascii: "0")): return 1
        case (1, UInt8(ascii: "1")): return 2
        case (2, zero), (3, zero): return UInt32(major - zero) + 1
        default: return nil
        }
    }
}

/// protobuf-c's entries of a map<string, string> field.
protocol MapEntry {
    var key: UnsafeMutablePointer<CChar>! { get set }
    var value: UnsafeMutablePointer<CChar>! { get set }
}

extension Envoy__Data__Accesslog__V3__HTTPRequestProperties__RequestHeadersEntry: MapEntry {}
extension Envoy__Data__Accesslog__V3__HTTPResponseProperties__ResponseHeadersEntry: MapEntry {}
