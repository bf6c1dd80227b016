import CEnvoyProtos
import CProtobufArena
import CProtobufC

/// Decodes StreamAccessLogsMessage payloads and encodes their entries into output lines.
///
/// One decoder per event loop. protobuf-c unpacks into the decoder's arena; every entry is
/// written straight from the C structs into the writers, whose buffers are handed over as
/// `SharedBytes`, and the arena is reset — no per-entry allocation on this path.
public final class ALSDecoder {
    private let arena: OpaquePointer
    private let jsonWriter = ByteWriter()
    private let textWriter = ByteWriter()
    private let alsWriter = ByteWriter()
    private let json: JSONLineEncoder
    private let memberMarks = MemberMarks()
    private let text: TextLineEncoder
    private let facts: EntryFactsBuilder
    private var jsonEnds: [UInt32] = []
    private var textEnds: [UInt32] = []
    private var alsEnds: [UInt32] = []
    private let wireCheck: WireCheck
    public var limits: DecodeLimits { wireCheck.limits }

    /// `redactedHeaders`: lowercased header names whose values the JSON shows as `[redacted]`.
    public init(redactedHeaders: [String] = [], limits: DecodeLimits = DecodeLimits()) {
        guard let arena = CProtobufArena_create(256 * 1024, limits.maxUnpackedBytes) else {
            fatalError("out of memory creating the decode arena")
        }
        self.arena = arena
        wireCheck = WireCheck(limits: limits)
        let flagCodes = ResponseFlagCodes()
        let redacted = redactedHeaders.map { Array($0.lowercased().utf8) }
        json = JSONLineEncoder(out: jsonWriter, flagCodes: flagCodes, redactedHeaders: redacted)
        text = TextLineEncoder(out: textWriter, flagCodes: flagCodes)
        facts = EntryFactsBuilder(flagCodes: flagCodes, redactedHeaders: redacted)
    }

    deinit { CProtobufArena_destroy(arena) }

    /// Decodes one message. An Identifier in it replaces `reporter` (Envoy sends it first).
    /// Encodes only `formats` (with none, entries are only counted) and computes only the
    /// per-entry facts someone needs. The limits are checked first on the wire bytes (depth,
    /// entries), then while unpacking (memory) and encoding (bytes of lines).
    /// `jsonMembers`: the JSON lines' top-level members (`.all` unless only masked subscribers read JSON).
    public func decode(_ payload: UnsafeRawBufferPointer, reporter: inout Reporter, formats: FormatSet,
                       facts factsNeed: FactsNeed = .none, jsonMembers: JSONMembers = .all,
                       decodedAtNanos: UInt64) throws(GRPCStatusError) -> EncodedBatch {
        try wireCheck.check(message: payload)
        let bytes = payload.baseAddress?.assumingMemoryBound(to: UInt8.self)
        guard let message = envoy__service__accesslog__v3__stream_access_logs_message__unpack(
            CProtobufArena_allocator(arena), payload.count, bytes)
        else {
            let exhausted = CProtobufArena_exhausted(arena) != 0
            CProtobufArena_reset(arena)
            if exhausted {
                throw GRPCStatusError(.resourceExhausted,
                                      "message of \(payload.count) bytes unpacks into more than \(limits.maxUnpackedBytes) bytes",
                                      reason: .unpackedTooLarge)
            }
            throw GRPCStatusError(.invalidArgument, "StreamAccessLogsMessage of \(payload.count) bytes does not decode",
                                  reason: .invalidProtobuf)
        }
        defer { CProtobufArena_reset(arena) }
        return try encode(message, payload: payload, reporter: &reporter, formats: formats, facts: factsNeed,
                          jsonMembers: jsonMembers, decodedAtNanos: decodedAtNanos)
    }

    /// Encodes a message built in memory rather than unpacked here (ALSTapOTLP builds one from
    /// OTLP records), exactly as `decode` encodes what it unpacked. The message stays the caller's.
    package func encode(built message: UnsafeMutablePointer<CStreamMessage>, reporter: inout Reporter, formats: FormatSet,
                        facts factsNeed: FactsNeed = .none, jsonMembers: JSONMembers = .all,
                        decodedAtNanos: UInt64) throws(GRPCStatusError) -> EncodedBatch {
        defer { CProtobufArena_reset(arena) }  // what the entries' views unpacked (peer metadata)
        return try encode(message, payload: nil, reporter: &reporter, formats: formats, facts: factsNeed,
                          jsonMembers: jsonMembers, decodedAtNanos: decodedAtNanos)
    }

    /// The entries of `message` into lines and facts. `payload`: the bytes it was unpacked from
    /// (their entries are relayed as received), or nil for a built message.
    private func encode(_ message: UnsafeMutablePointer<CStreamMessage>, payload: UnsafeRawBufferPointer?,
                        reporter: inout Reporter, formats: FormatSet, facts factsNeed: FactsNeed,
                        jsonMembers: JSONMembers, decodedAtNanos: UInt64) throws(GRPCStatusError) -> EncodedBatch {
        if let identifier = message.pointee.identifier {
            reporter = Reporter(identifier)
        }
        jsonWriter.removeAll()
        textWriter.removeAll()
        alsWriter.removeAll()
        jsonEnds.removeAll(keepingCapacity: true)
        textEnds.removeAll(keepingCapacity: true)
        alsEnds.removeAll(keepingCapacity: true)
        let withFacts = factsNeed != .none
        if withFacts { facts.reset(reporter: reporter, need: factsNeed) }
        let wantsJSON = formats.contains(.json)
        let wantsText = formats.contains(.text)
        let wantsALS = formats.contains(.als)
        let wantsIndex = wantsJSON && formats.contains(.memberIndex)
        let members = wantsIndex ? Unmanaged.passUnretained(memberMarks) : nil
        if wantsIndex { memberMarks.removeAll() }
        let allocator = CProtobufArena_allocator(arena)!
        let wireCheck = self.wireCheck
        var count = 0
        let maxBytes = limits.maxUnpackedBytes
        // The wire check found each entry's bytes: a relay forwards them as received (when the
        // counts agree, as they do unless protobuf-c merged something the check did not foresee).
        var rawEntries: [Range<Int>]?
        func checkLinesBound() throws(GRPCStatusError) {
            if jsonWriter.count + textWriter.count + alsWriter.count > maxBytes {
                throw GRPCStatusError(.resourceExhausted, "message's lines take more than \(maxBytes) bytes",
                                      reason: .encodedTooLarge)
            }
        }
        // One view per entry, shared by the encoders and the facts.
        // `repack`: its bytes changed (redacted), so the ALS line is the entry packed again.
        func add(_ common: UnsafeMutablePointer<CCommon>?, _ entry: UnsafeRawPointer, repack: Bool = false,
                 _ encode: (EntryView) -> Void) throws(GRPCStatusError) {
            if wantsIndex { memberMarks.lineFirst.append(UInt32(memberMarks.offsets.count)) }
            encode(EntryView(UnsafePointer(common), reporter: reporter, allocator: allocator, wireCheck: wireCheck))
            if wantsJSON { jsonEnds.append(UInt32(jsonWriter.count)) }
            if wantsText { textEnds.append(UInt32(textWriter.count)) }
            if wantsALS {
                if let rawEntries, let payload, !repack {
                    LogEntryField.append(UnsafeRawBufferPointer(rebasing: payload[rawEntries[count]]), to: alsWriter)
                } else {
                    LogEntryField.append(entry.assumingMemoryBound(to: ProtobufCMessage.self), to: alsWriter)
                }
                alsEnds.append(UInt32(alsWriter.count))
            }
            count += 1
            // Every 16 entries (and at the end): an entry's lines are at most a few times its
            // bytes, so the bound holds within 16 entries' worth.
            if count & 15 == 0 { try checkLinesBound() }
        }
        switch message.pointee.log_entries_case {
        case ENVOY__SERVICE__ACCESSLOG__V3__STREAM_ACCESS_LOGS_MESSAGE__LOG_ENTRIES_HTTP_LOGS:
            if let logs = message.pointee.http_logs?.pointee {
                if wantsALS && payload != nil && wireCheck.entryRanges.count == logs.n_log_entry { rawEntries = wireCheck.entryRanges }
                for i in 0..<logs.n_log_entry {
                    guard let entry = logs.log_entry[i] else { continue }
                    let redacted = wantsALS && ALSRedaction.redact(entry, names: json.redactedHeaders)
                    try add(entry.pointee.common_properties, entry, repack: redacted) { view in
                        let sections = wantsJSON ? json.http(entry, view: view, reporter: reporter, members: members, keep: jsonMembers) : JSONSections()
                        if wantsText { text.http(entry, view: view, reporter: reporter) }
                        if withFacts { facts.add(http: entry, view: view, sections: sections) }
                    }
                }
            }
        case ENVOY__SERVICE__ACCESSLOG__V3__STREAM_ACCESS_LOGS_MESSAGE__LOG_ENTRIES_TCP_LOGS:
            if let logs = message.pointee.tcp_logs?.pointee {
                if wantsALS && payload != nil && wireCheck.entryRanges.count == logs.n_log_entry { rawEntries = wireCheck.entryRanges }
                for i in 0..<logs.n_log_entry {
                    guard let entry = logs.log_entry[i] else { continue }
                    try add(entry.pointee.common_properties, entry) { view in
                        let sections = wantsJSON ? json.tcp(entry, view: view, reporter: reporter, members: members, keep: jsonMembers) : JSONSections()
                        if wantsText { text.tcp(entry, view: view, reporter: reporter) }
                        if withFacts { facts.add(tcp: entry, view: view, sections: sections) }
                    }
                }
            }
        default:
            break
        }
        try checkLinesBound()
        let hasEntries = count > 0
        return EncodedBatch(
            entryCount: count,
            isTCP: message.pointee.log_entries_case == ENVOY__SERVICE__ACCESSLOG__V3__STREAM_ACCESS_LOGS_MESSAGE__LOG_ENTRIES_TCP_LOGS,
            json: wantsJSON && hasEntries ? EncodedLines(bytes: jsonWriter.take(), lineEnds: jsonEnds,
                                                         members: wantsIndex ? MemberIndex(offsets: memberMarks.offsets,
                                                                                           lineFirst: memberMarks.lineFirst) : nil,
                                                         kept: jsonMembers)
                : nil,
            text: wantsText && hasEntries ? EncodedLines(bytes: textWriter.take(), lineEnds: textEnds) : nil,
            als: wantsALS && hasEntries ? EncodedLines(bytes: alsWriter.take(), lineEnds: alsEnds) : nil,
            identifier: wantsALS ? reporter.identifierBytes : nil,
            facts: withFacts && hasEntries ? facts.finish() : nil,
            decodedAtNanos: decodedAtNanos)
    }
}
