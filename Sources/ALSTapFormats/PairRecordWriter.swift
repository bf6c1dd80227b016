import ALSTapALS

/// One entry of a batch (kept alive with it): what pair records are made of.
public struct EntryRef {
    public let batch: EncodedBatch
    public let index: Int

    public init(batch: EncodedBatch, index: Int) {
        self.batch = batch
        self.index = index
    }

    /// Its facts (the batch must carry facts).
    public var facts: EntryFacts { batch.facts!.facts[index] }
}

/// Writes `pair=1` records: both sidecars' entries of one request (or a lone half) as one JSON
/// object — the request, source and destination objects lifted from the halves' own lines,
/// then the lines themselves — and one text line, with both halves' facts (strings copied into
/// the record batch's pool) so that filters test a record by either half. Records gather until
/// `finish` hands them over as one batch; buffers are reused.
public final class PairRecordWriter {
    private let json = ByteWriter(capacity: 64 * 1024)
    private let text = ByteWriter(capacity: 16 * 1024)
    private var jsonEnds: [UInt32] = []
    private var textEnds: [UInt32] = []
    private var facts: [EntryFacts] = []
    private let pool = ByteWriter(capacity: 16 * 1024)
    private var pairs: [StringPair] = []
    /// Every half's facts had their details (the records' do then too).
    private var hasDetails = true

    public init() {}

    /// Writes one record: a pair (`inbound[0]` the final attempt, the rest earlier ones) or a
    /// lone half, in JSON and text, with both halves' facts for filters.
    public func write(outbound: EntryRef?, inbound: [EntryRef]) {
        guard let first = outbound ?? inbound.first else { return }
        let paired = outbound != nil && !inbound.isEmpty
        let o = outbound?.facts
        let i = inbound.first?.facts
        // JSON
        json.append("{\"type\":\"pair\",\"paired\":")
        json.append(paired ? "true" : "false")
        let idHalf = first
        let id = idHalf.batch.facts!.bytes(idHalf.facts.requestId)
        if !id.isEmpty {
            json.append(",\"requestId\":\"")
            json.appendEscaped(id.bindMemory(to: UInt8.self), mode: .json)
            json.append(UInt8(ascii: "\""))
        }
        section("request", outbound ?? first, \.request)
        section("source", outbound ?? first, \.source)
        section("destination", inbound.first ?? first, \.destination)
        if let outbound {
            json.append(",\"outbound\":")
            line(outbound)
        }
        if let final = inbound.first {
            json.append(",\"inbound\":")
            line(final)
        }
        if inbound.count > 1 {
            json.append(",\"attempts\":[")
            for (n, attempt) in inbound.dropFirst().enumerated() {
                if n > 0 { json.append(UInt8(ascii: ",")) }
                line(attempt)
            }
            json.append(UInt8(ascii: "]"))
        }
        if paired, let o, let i, o.durationMicros >= 0, i.durationMicros >= 0 {
            json.append(",\"overheadMs\":")
            json.appendMilliseconds(seconds: 0, nanos: 0, micros: o.durationMicros - i.durationMicros)
        }
        json.append("}\n")
        jsonEnds.append(UInt32(json.count))
        // Text: source → destination once, both latencies.
        let anyFacts = o ?? i!
        let anyTable = first.batch.facts!
        text.append(paired ? "pair " : "lone ")
        label(o.map { ($0, outbound!.batch.facts!) } , source: true, fallback: (anyFacts, anyTable))
        text.append(" → ")
        label(i.map { ($0, inbound.first!.batch.facts!) }, source: false, fallback: (anyFacts, anyTable))
        text.append(UInt8(ascii: " "))
        let method = JSONLineEncoder.methodName(UInt32(anyFacts.method))
        if let method { text.append(method) } else { text.append(UInt8(ascii: "-")) }
        text.append(UInt8(ascii: " "))
        text.appendEscaped(anyTable.bytes(anyFacts.path).bindMemory(to: UInt8.self), mode: .text)
        text.append(UInt8(ascii: " "))
        if anyFacts.code != 0 { text.appendDecimal(UInt64(anyFacts.code)) } else { text.append(UInt8(ascii: "-")) }
        if let o, o.durationMicros >= 0 {
            text.append(" out=")
            text.appendMilliseconds(seconds: 0, nanos: 0, micros: o.durationMicros)
            text.append("ms")
        }
        if let i, i.durationMicros >= 0 {
            text.append(" in=")
            text.appendMilliseconds(seconds: 0, nanos: 0, micros: i.durationMicros)
            text.append("ms")
        }
        if inbound.count > 1 {
            text.append(" attempts=")
            text.appendDecimal(UInt64(inbound.count))
        }
        text.append(UInt8(ascii: "\n"))
        textEnds.append(UInt32(text.count))
        // Facts: both halves, for "a pair matches if either half does".
        facts.append(rebased(outbound ?? first))
        facts.append(rebased(inbound.first ?? first))
        if !(outbound ?? first).batch.facts!.hasDetails || !(inbound.first ?? first).batch.facts!.hasDetails { hasDetails = false }
    }

    /// `"name":{...}` from a half's JSON line, when the line has that object.
    private func section(_ name: StaticString, _ half: EntryRef, _ keyPath: KeyPath<JSONSections, Range<UInt32>>) {
        let range = half.facts.jsonSections[keyPath: keyPath]
        guard !range.isEmpty, let lines = half.batch.json else { return }
        let start = lines.range(half.index..<(half.index + 1)).lowerBound
        json.append(UInt8(ascii: ","))
        json.append(UInt8(ascii: "\""))
        json.append(name)
        json.append("\":")
        json.append(UnsafeRawBufferPointer(rebasing: lines.bytes.bytes[(start + Int(range.lowerBound))..<(start + Int(range.upperBound))]))
    }

    /// A half's whole JSON line, without its newline.
    private func line(_ half: EntryRef) {
        let lines = half.batch.json!
        let range = lines.range(half.index..<(half.index + 1))
        json.append(UnsafeRawBufferPointer(rebasing: lines.bytes.bytes[range.lowerBound..<(range.upperBound - 1)]))
    }

    /// `workload.namespace` of one side, else its address.
    private func label(_ side: (EntryFacts, EntryFactsTable)?, source: Bool, fallback: (EntryFacts, EntryFactsTable)) {
        let (f, table) = side ?? fallback
        let workload = table.bytes(source ? f.sourceWorkload : (f.destinationWorkload.length > 0 ? f.destinationWorkload : f.destinationService))
        let namespace = table.bytes(source ? f.sourceNamespace : f.destinationNamespace)
        guard !workload.isEmpty else {
            text.append(UInt8(ascii: "-"))
            return
        }
        text.appendEscaped(workload.bindMemory(to: UInt8.self), mode: .text)
        if !namespace.isEmpty {
            text.append(UInt8(ascii: "."))
            text.appendEscaped(namespace.bindMemory(to: UInt8.self), mode: .text)
        }
    }

    /// A half's facts with its strings copied into this record batch's pool.
    private func rebased(_ half: EntryRef) -> EntryFacts {
        var f = half.facts
        let table = half.batch.facts!
        func move(_ ref: inout StringRef) {
            guard ref.length > 0 else { return }
            let bytes = table.bytes(ref)
            ref = StringRef(offset: UInt32(pool.count), length: ref.length)
            pool.append(bytes)
        }
        move(&f.sourceNamespace); move(&f.sourceWorkload); move(&f.sourcePod)
        move(&f.destinationNamespace); move(&f.destinationWorkload); move(&f.destinationPod); move(&f.destinationService)
        move(&f.reporterWorkload); move(&f.reporterPod)
        move(&f.path); move(&f.authority); move(&f.scheme); move(&f.logName); move(&f.requestId)
        move(&f.linkFrom); move(&f.linkTo)
        move(&f.reporterNamespace); move(&f.routeName); move(&f.sourceAddress); move(&f.destinationAddress)
        move(&f.traceId); move(&f.userAgent)
        func move(_ range: inout PairRange) {
            guard range.count > 0 else { return }
            let first = UInt32(pairs.count)
            for i in Int(range.first)..<Int(range.first + range.count) {
                var pair = table.pairs[i]
                move(&pair.name)
                move(&pair.value)
                pairs.append(pair)
            }
            range = PairRange(first: first, count: range.count)
        }
        move(&f.headers); move(&f.reporterLabels); move(&f.peerLabels)
        return f
    }

    /// The records written since the last call, as one batch; nil if none.
    public func finish(decodedAtNanos: UInt64) -> EncodedBatch? {
        defer {
            json.removeAll()
            text.removeAll()
            pool.removeAll()
            jsonEnds.removeAll(keepingCapacity: true)
            textEnds.removeAll(keepingCapacity: true)
            facts.removeAll(keepingCapacity: true)
            pairs.removeAll(keepingCapacity: true)
            hasDetails = true
        }
        guard !jsonEnds.isEmpty else { return nil }
        return EncodedBatch(
            entryCount: jsonEnds.count, isTCP: false,
            json: EncodedLines(bytes: json.take(), lineEnds: jsonEnds),
            text: EncodedLines(bytes: text.take(), lineEnds: textEnds),
            facts: EntryFactsTable(facts: facts, strings: pool.take(), pairs: pairs, stride: 2, hasDetails: hasDetails),
            decodedAtNanos: decodedAtNanos)
    }
}
