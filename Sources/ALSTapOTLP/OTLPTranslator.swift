import ALSTapALS
import CEnvoyProtos
import CProtobufArena
import CProtobufC

typealias CKeyValue = Opentelemetry__Proto__Common__V1__KeyValue
typealias CAnyValue = Opentelemetry__Proto__Common__V1__AnyValue
typealias CLogRecord = Opentelemetry__Proto__Logs__V1__LogRecord

/// One StreamAccessLogsMessage a request became: the records of one reporter, in order.
/// Valid only during the `emit` call that receives it.
package struct TranslatedMessage {
    /// The whole message: its Identifier, then its entries.
    package let message: UnsafeRawBufferPointer
    /// The Identifier field (tag included): which reporter sent the entries.
    package let identifier: UnsafeRawBufferPointer
    /// The message without its Identifier, for a reporter already known.
    package let entries: UnsafeRawBufferPointer
    package let entryCount: Int
}

/// The records of a request that could not be read (`partial_success`).
package struct OTLPRejections: Equatable, Sendable {
    package var count = 0
    /// Why the first of them was rejected.
    package var firstReason = ""

    package init() {}

    package var errorMessage: String {
        count == 0 ? "" : "\(count) log record\(count == 1 ? "" : "s") rejected; the first: \(firstReason)"
    }
}

/// Turns OpenTelemetry's ExportLogsServiceRequest into Envoy's StreamAccessLogsMessages (one per
/// reporter), so every consumer downstream (tap, filters, pairing, replay, `/top`, relays)
/// serves OTLP entries with the code it runs for ALS. One per event loop; protobuf-c unpacks
/// into its arena, which is reset after each request.
package final class OTLPTranslator {
    private let arena: OpaquePointer
    private let out = ByteWriter(capacity: 64 * 1024)
    private let wireCheck: OTLPWireCheck
    package var limits: DecodeLimits { wireCheck.limits }
    /// The current record's attributes alstap has no field for (written as custom tags).
    private var extras: [(kv: UnsafeMutablePointer<CKeyValue>, place: ALSEntryWriter.ExtraPlace, nameStart: Int)] = []
    /// At most this many custom tags per entry from such attributes.
    package static let maxExtraAttributes = 32

    package init(limits: DecodeLimits = DecodeLimits()) {
        guard let arena = CProtobufArena_create(256 * 1024, limits.maxUnpackedBytes) else {
            fatalError("out of memory creating the decode arena")
        }
        self.arena = arena
        wireCheck = OTLPWireCheck(limits: limits)
    }

    deinit { CProtobufArena_destroy(arena) }

    /// Translates one request, calling `emit` with each message it became. Throws for a request
    /// that does not decode or is over a bound (the whole call fails); returns the records that
    /// were skipped.
    package func translate(_ payload: UnsafeRawBufferPointer,
                           emit: (TranslatedMessage) throws(GRPCStatusError) -> Void) throws(GRPCStatusError) -> OTLPRejections {
        try wireCheck.check(payload)
        guard let unpacked = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
            CProtobufArena_allocator(arena), payload.count, payload.baseAddress?.assumingMemoryBound(to: UInt8.self))
        else {
            let exhausted = CProtobufArena_exhausted(arena) != 0
            CProtobufArena_reset(arena)
            if exhausted {
                throw GRPCStatusError(.resourceExhausted,
                                      "request of \(payload.count) bytes unpacks into more than \(limits.maxUnpackedBytes) bytes",
                                      reason: .unpackedTooLarge)
            }
            throw GRPCStatusError(.invalidArgument, "ExportLogsServiceRequest of \(payload.count) bytes does not decode",
                                  reason: .invalidProtobuf)
        }
        defer { CProtobufArena_reset(arena) }
        var rejections = OTLPRejections()
        var open: (reporter: ReporterFields, identifier: Range<Int>, entries: Int, count: Int)?
        let writer = ALSEntryWriter(out)

        func flush() throws(GRPCStatusError) {
            guard let current = open else { return }
            open = nil
            writer.proto.end(current.entries)
            guard out.count <= limits.maxUnpackedBytes else {
                throw GRPCStatusError(.resourceExhausted, "request's entries take more than \(limits.maxUnpackedBytes) bytes",
                                      reason: .encodedTooLarge)
            }
            let all = out.bytes
            try emit(TranslatedMessage(message: all, identifier: UnsafeRawBufferPointer(rebasing: all[current.identifier]),
                                       entries: UnsafeRawBufferPointer(rebasing: all[current.identifier.upperBound...]),
                                       entryCount: current.count))
        }

        let request = unpacked.pointee
        for r in 0..<request.n_resource_logs {
            guard let resourceLogs = request.resource_logs[r] else { continue }
            var resourceIdentity = ReporterFields()
            if let resource = resourceLogs.pointee.resource {
                Self.forEachAttribute(resource.pointee.attributes, resource.pointee.n_attributes) { key, value in
                    resourceIdentity.read(key: key, value: value)
                }
            }
            for s in 0..<resourceLogs.pointee.n_scope_logs {
                guard let scope = resourceLogs.pointee.scope_logs[s] else { continue }
                for l in 0..<scope.pointee.n_log_records {
                    guard let record = scope.pointee.log_records[l] else { continue }
                    var fields = AccessFields()
                    var identity = resourceIdentity
                    if let reason = read(record, into: &fields, identity: &identity) {
                        if rejections.count == 0 { rejections.firstReason = "record \(l + 1) of resource \(r + 1): \(reason)" }
                        rejections.count += 1
                        continue
                    }
                    if open == nil || !(open!.reporter == identity) {
                        try flush()
                        out.removeAll()
                        let start = out.count
                        identity.writeIdentifier(writer)
                        let identifier = start..<out.count
                        open = (identity, identifier, writer.proto.begin(2), 0)
                    }
                    writer.entry(fields) { place, w in
                        for extra in extras where extra.place == place {
                            guard let value = extra.kv.pointee.value else { continue }
                            let key = utf8Bytes(extra.kv.pointee.key)
                            if place == .common {
                                Self.writeTag(w, key: key, value)
                            } else if let text = stringValue(value) {
                                w.header(place, Bytes(rebasing: key[extra.nameStart...]), text)
                            }
                        }
                    }
                    open!.count += 1
                    if out.count > limits.maxUnpackedBytes {
                        throw GRPCStatusError(.resourceExhausted, "request's entries take more than \(limits.maxUnpackedBytes) bytes",
                                              reason: .encodedTooLarge)
                    }
                }
            }
        }
        try flush()
        return rejections
    }

    /// Reads a record's body and attributes; returns why it cannot be read, or nil.
    private func read(_ record: UnsafeMutablePointer<CLogRecord>, into f: inout AccessFields,
                      identity: inout ReporterFields) -> String? {
        let r = record.pointee
        f.startNanos = r.time_unix_nano > 0 ? r.time_unix_nano : r.observed_time_unix_nano
        if r.trace_id.len == 16, let data = r.trace_id.data, Bytes(start: data, count: 16).contains(where: { $0 != 0 }) {
            f.traceId = Bytes(start: data, count: 16)
        }
        if r.span_id.len == 8, let data = r.span_id.data, Bytes(start: data, count: 8).contains(where: { $0 != 0 }) {
            f.spanId = Bytes(start: data, count: 8)
        }
        extras.removeAll(keepingCapacity: true)
        var problem: String?
        func attributes(_ list: UnsafeMutablePointer<UnsafeMutablePointer<CKeyValue>?>?, _ count: Int) {
            guard let list else { return }
            for i in 0..<count {
                guard problem == nil, let kv = list[i], let key = kv.pointee.key else { continue }
                let name = utf8Bytes(key)
                guard let attribute = AccessAttribute.named(name) else {
                    if extras.count < Self.maxExtraAttributes, !name.isEmpty { extras.append(Self.extra(kv, name)) }
                    continue
                }
                guard let value = kv.pointee.value else { continue }
                if attribute.isReporterIdentity {
                    identity.read(attribute, value)
                } else {
                    problem = f.read(attribute, value)
                }
            }
        }
        var known = 0
        if let body = r.body {
            switch body.pointee.value_case {
            case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
                if let text = body.pointee.string_value, let line = meaningful(utf8Bytes(text)) {
                    if !IstioTextLine.parse(line, into: &f) { f.body = line }
                    known += 1
                }
            case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
                // A structured body (Envoy's `body: {kvlist_value: …}`) reads like attributes.
                if let list = body.pointee.kvlist_value {
                    attributes(list.pointee.values, list.pointee.n_values)
                }
            default:
                break
            }
        }
        attributes(r.attributes, r.n_attributes)
        if let problem { return problem }
        if f.isEmpty && extras.isEmpty && known == 0 { return "it has no body and no attribute alstap reads" }
        return nil
    }

    /// OpenTelemetry's names for logged headers (`http.request.header.x-demo`) become the entry's
    /// headers; any other attribute a custom tag.
    private static let requestHeaderPrefix = Array("http.request.header.".utf8)
    private static let responseHeaderPrefix = Array("http.response.header.".utf8)

    private static func extra(_ kv: UnsafeMutablePointer<CKeyValue>, _ name: Bytes)
        -> (kv: UnsafeMutablePointer<CKeyValue>, place: ALSEntryWriter.ExtraPlace, nameStart: Int) {
        if name.count > requestHeaderPrefix.count, name.starts(with: requestHeaderPrefix) {
            return (kv, .request, requestHeaderPrefix.count)
        }
        if name.count > responseHeaderPrefix.count, name.starts(with: responseHeaderPrefix) {
            return (kv, .response, responseHeaderPrefix.count)
        }
        return (kv, .common, 0)
    }

    /// An attribute alstap has no field for, as a custom tag: strings as they are, numbers and
    /// bools written out; arrays, lists and bytes are left out.
    static func writeTag(_ w: ALSEntryWriter, key: Bytes, _ value: UnsafeMutablePointer<CAnyValue>) {
        let v = value.pointee
        switch v.value_case {
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
            if let text = v.string_value { w.customTag(key, utf8Bytes(text)) }
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
            w.customTag(key, v.bool_value != 0 ? staticBytes("true") : staticBytes("false"))
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
            var text = v.value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE
                ? String(v.int_value) : String(v.double_value)
            text.withUTF8 { w.customTag(key, $0) }
        default:
            break
        }
    }

    static func forEachAttribute(_ list: UnsafeMutablePointer<UnsafeMutablePointer<CKeyValue>?>?, _ count: Int,
                                 _ body: (Bytes, UnsafeMutablePointer<CAnyValue>) -> Void) {
        guard let list else { return }
        for i in 0..<count {
            guard let kv = list[i], let key = kv.pointee.key, let value = kv.pointee.value else { continue }
            body(utf8Bytes(key), value)
        }
    }
}

@inline(__always)
func staticBytes(_ text: StaticString) -> Bytes { Bytes(start: text.utf8Start, count: text.utf8CodeUnitCount) }
