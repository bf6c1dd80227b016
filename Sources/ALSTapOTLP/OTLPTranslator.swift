import ALSTapALS
import CEnvoyProtos
import CProtobufArena
import CProtobufC

typealias CKeyValue = Opentelemetry__Proto__Common__V1__KeyValue
typealias CAnyValue = Opentelemetry__Proto__Common__V1__AnyValue
typealias CLogRecord = Opentelemetry__Proto__Logs__V1__LogRecord

/// One StreamAccessLogsMessage a request became: the records of one reporter, in order, built
/// in protobuf-c's structs. Valid only during the `emit` call that receives it.
package struct TranslatedMessage {
    /// The message, without its Identifier: `OTLPTranslator.attachIdentifier` sets it.
    package let message: UnsafeMutablePointer<CStreamMessage>
    /// The Identifier's bytes: which reporter sent the entries (a cache key).
    package let identifier: UnsafeRawBufferPointer
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
    private let wireCheck: OTLPWireCheck
    package var limits: DecodeLimits { wireCheck.limits }
    /// The Identifier of the message being built (its bytes are the reporter's cache key).
    private let identifierWriter = ByteWriter(capacity: 1024)
    private let scratch = ByteWriter(capacity: 4096)
    private let sink = UnsafeMutableRawPointer.allocate(byteCount: ArenaAllocation.sinkBytes, alignment: 16)
    /// The current record's attributes alstap has no field for.
    private var extras: [ALSEntryBuilder.Extra] = []
    /// The entries of the message being built: HTTPAccessLogEntry or, for TCP records, TCPAccessLogEntry
    /// structs (a message holds entries of one kind).
    private var entries: [UnsafeMutableRawPointer] = []
    /// At most this many custom tags and headers per entry from such attributes.
    package static let maxExtraAttributes = 32

    package init(limits: DecodeLimits = DecodeLimits()) {
        guard let arena = CProtobufArena_create(256 * 1024, limits.maxUnpackedBytes) else {
            fatalError("out of memory creating the decode arena")
        }
        self.arena = arena
        wireCheck = OTLPWireCheck(limits: limits)
    }

    deinit {
        CProtobufArena_destroy(arena)
        sink.deallocate()
    }

    private var exhausted: GRPCStatusError {
        GRPCStatusError(.resourceExhausted, "request's entries take more than \(limits.maxUnpackedBytes) bytes",
                        reason: .unpackedTooLarge)
    }

    /// Translates one request, calling `emit` with each message it became. Throws for a request
    /// that does not decode or is over a bound (the whole call fails); returns the records that
    /// were skipped.
    package func translate(_ payload: UnsafeRawBufferPointer,
                           emit: (TranslatedMessage) throws(GRPCStatusError) -> Void) throws(GRPCStatusError) -> OTLPRejections {
        try wireCheck.check(payload)
        let allocator = CProtobufArena_allocator(arena)!
        guard let unpacked = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
            allocator, payload.count, payload.baseAddress?.assumingMemoryBound(to: UInt8.self))
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
        var builder = ALSEntryBuilder(arena: ArenaAllocation(allocator: allocator, sink: sink), scratch: scratch)
        var current: ReporterFields?
        var currentIsTCP = false
        entries.removeAll(keepingCapacity: true)

        func flush() throws(GRPCStatusError) {
            guard current != nil, !entries.isEmpty else { return }
            let message: UnsafeMutablePointer<CStreamMessage> = builder.arena.message {
                envoy__service__accesslog__v3__stream_access_logs_message__init($0)
            }
            if currentIsTCP {
                let logs: UnsafeMutablePointer<Envoy__Service__Accesslog__V3__StreamAccessLogsMessage__TCPAccessLogEntries> =
                    builder.arena.message { envoy__service__accesslog__v3__stream_access_logs_message__tcpaccess_log_entries__init($0) }
                guard let array: UnsafeMutablePointer<UnsafeMutablePointer<CTCPEntry>?> = builder.arena.entryArray(entries.count)
                else { throw exhausted }
                for (i, entry) in entries.enumerated() { array[i] = entry.assumingMemoryBound(to: CTCPEntry.self) }
                logs.pointee.n_log_entry = entries.count
                logs.pointee.log_entry = array
                message.pointee.log_entries_case = ENVOY__SERVICE__ACCESSLOG__V3__STREAM_ACCESS_LOGS_MESSAGE__LOG_ENTRIES_TCP_LOGS
                message.pointee.tcp_logs = logs
            } else {
                let logs: UnsafeMutablePointer<Envoy__Service__Accesslog__V3__StreamAccessLogsMessage__HTTPAccessLogEntries> =
                    builder.arena.message { envoy__service__accesslog__v3__stream_access_logs_message__httpaccess_log_entries__init($0) }
                guard let array: UnsafeMutablePointer<UnsafeMutablePointer<CHTTPEntry>?> = builder.arena.entryArray(entries.count)
                else { throw exhausted }
                for (i, entry) in entries.enumerated() { array[i] = entry.assumingMemoryBound(to: CHTTPEntry.self) }
                logs.pointee.n_log_entry = entries.count
                logs.pointee.log_entry = array
                message.pointee.log_entries_case = ENVOY__SERVICE__ACCESSLOG__V3__STREAM_ACCESS_LOGS_MESSAGE__LOG_ENTRIES_HTTP_LOGS
                message.pointee.http_logs = logs
            }
            guard !builder.arena.failed else { throw exhausted }
            let count = entries.count
            entries.removeAll(keepingCapacity: true)
            try emit(TranslatedMessage(message: message, identifier: identifierWriter.bytes, entryCount: count))
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
                    if let reason = read(record, into: &fields, identity: &identity, arena: &builder.arena) {
                        if rejections.count == 0 { rejections.firstReason = "record \(l + 1) of resource \(r + 1): \(reason)" }
                        rejections.count += 1
                        continue
                    }
                    // A message has one reporter, and entries of one kind.
                    if current == nil || !(current! == identity) || currentIsTCP != fields.isTCP {
                        try flush()
                        identifierWriter.removeAll()
                        identity.writeIdentifier(ProtoWriter(identifierWriter))
                        current = identity
                        currentIsTCP = fields.isTCP
                    }
                    entries.append(fields.isTCP ? UnsafeMutableRawPointer(builder.tcpEntry(fields, extras: extras))
                                                : UnsafeMutableRawPointer(builder.entry(fields, extras: extras)))
                    if builder.arena.failed { throw exhausted }
                }
            }
        }
        try flush()
        return rejections
    }

    /// Sets `message`'s Identifier from its bytes (for a reporter the caller has not seen yet).
    package func attachIdentifier(_ message: TranslatedMessage) throws(GRPCStatusError) {
        // A nested message has no unpack function of its own: unpacked as the Identifier field of
        // a StreamAccessLogsMessage, so protobuf-c sets its descriptor (a packed relay needs it).
        scratch.removeAll()
        ProtoWriter(scratch).bytes(1, UnsafeBufferPointer(start: message.identifier.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                                          count: message.identifier.count))
        guard let holder = envoy__service__accesslog__v3__stream_access_logs_message__unpack(
            CProtobufArena_allocator(arena), scratch.count, scratch.base), let identifier = holder.pointee.identifier
        else { throw exhausted }
        message.message.pointee.identifier = identifier
    }

    /// Reads a record's body and attributes; returns why it cannot be read, or nil.
    private func read(_ record: UnsafeMutablePointer<CLogRecord>, into f: inout AccessFields,
                      identity: inout ReporterFields, arena: inout ArenaAllocation) -> String? {
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
                    if extras.count < Self.maxExtraAttributes, !name.isEmpty, let value = kv.pointee.value,
                       let extra = Self.extra(name, value, arena: &arena) {
                        extras.append(extra)
                    }
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

    /// An attribute alstap has no field for: a header (string values), else a custom tag (strings
    /// as they are, numbers and bools written out into the arena); arrays, lists and bytes are
    /// left out.
    private static func extra(_ name: Bytes, _ value: UnsafeMutablePointer<CAnyValue>,
                              arena: inout ArenaAllocation) -> ALSEntryBuilder.Extra? {
        let header: (ALSEntryBuilder.ExtraPlace, Int)? =
            name.count > requestHeaderPrefix.count && name.starts(with: requestHeaderPrefix) ? (.request, requestHeaderPrefix.count)
            : name.count > responseHeaderPrefix.count && name.starts(with: responseHeaderPrefix) ? (.response, responseHeaderPrefix.count)
            : nil
        if let (place, prefixLength) = header {
            guard let text = stringValue(value) else { return nil }
            return (place, Bytes(rebasing: name[prefixLength...]), text)
        }
        let v = value.pointee
        switch v.value_case {
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
            return v.string_value.map { (.common, name, utf8Bytes($0)) }
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
            return (.common, name, v.bool_value != 0 ? staticBytes("true") : staticBytes("false"))
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
            var text = v.value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE
                ? String(v.int_value) : String(v.double_value)
            let count = text.utf8.count
            let stored = text.withUTF8 { arena.string($0) }
            return (.common, name, Bytes(start: UnsafeRawPointer(stored).assumingMemoryBound(to: UInt8.self), count: count))
        default:
            return nil
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
