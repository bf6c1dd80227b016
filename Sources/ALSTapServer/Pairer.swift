import ALSTapALS
import ALSTapSystem

/// Joins the outbound entry of a request (source sidecar) with its inbound twin (destination
/// sidecar) into one record, by x-request-id, confirmed by the connection both saw.
///
/// Loop-confined: each loop with `pair=1` subscribers runs one, fed with every batch its inbox
/// delivers (which is every batch of every loop). Halves arrive in any order; retries give one
/// outbound and several inbound entries. A half alone when its window ends is emitted alone.
final class Pairer {
    /// One entry: its batch (kept alive while waiting) and its index there.
    private struct Half {
        let batch: EncodedBatch
        let index: Int
        var facts: EntryFacts { batch.facts!.facts[index] }
    }

    private struct Pending {
        var outbound: Half?
        var inbound: [Half] = []
        let firstSeenNanos: UInt64
    }

    private let windowNanos: UInt64
    private let capacity: Int
    /// Bytes of batches the waiting halves may keep alive (a half holds its whole batch).
    private let capacityBytes: Int
    /// Inbound attempts kept per request; more come out alone (a flood of one request id).
    static let maxAttempts = 16
    private let counters: Counters
    private var pending: [[UInt8]: Pending] = [:]
    /// The batches waiting halves hold, each counted once: halves held, bytes.
    private var pinned: [ObjectIdentifier: (halves: Int, bytes: Int)] = [:]
    private(set) var pinnedBytes = 0
    private let json = ByteWriter(capacity: 64 * 1024)
    private let text = ByteWriter(capacity: 16 * 1024)
    private var jsonEnds: [UInt32] = []
    private var textEnds: [UInt32] = []
    private var facts: [EntryFacts] = []
    private let pool = ByteWriter(capacity: 16 * 1024)

    init(windowNanos: UInt64, capacity: Int, capacityBytes: Int = .max, counters: Counters) {
        self.windowNanos = windowNanos
        self.capacity = capacity
        self.capacityBytes = capacityBytes
        self.counters = counters
    }

    private static func key(_ half: Half) -> ObjectIdentifier { ObjectIdentifier(half.batch.json!.bytes) }

    /// Would holding `half` keep the pinned bytes within the bound?
    private func fits(_ half: Half) -> Bool {
        pinned[Self.key(half)] != nil || pinnedBytes + half.batch.encodedBytes <= capacityBytes
    }

    private func pin(_ half: Half) {
        let key = Self.key(half)
        if let held = pinned[key] {
            pinned[key] = (held.halves + 1, held.bytes)
        } else {
            let bytes = half.batch.encodedBytes
            pinned[key] = (1, bytes)
            pinnedBytes += bytes
        }
    }

    private func unpin(_ half: Half) {
        let key = Self.key(half)
        guard let held = pinned[key] else { return }
        if held.halves > 1 {
            pinned[key] = (held.halves - 1, held.bytes)
        } else {
            pinned[key] = nil
            pinnedBytes -= held.bytes
        }
    }

    private func unpin(_ entry: Pending) {
        if let outbound = entry.outbound { unpin(outbound) }
        for half in entry.inbound { unpin(half) }
    }

    /// Takes a live batch (it must carry facts and JSON); returns the records ready now.
    func add(_ batch: EncodedBatch, now: UInt64) -> EncodedBatch? {
        guard let table = batch.facts, batch.json != nil else { return nil }
        for index in 0..<batch.entryCount {
            let half = Half(batch: batch, index: index)
            let f = table.facts[index]
            let id = table.bytes(f.requestId)
            guard !batch.isTCP, !id.isEmpty, f.direction != .unknown else {
                emit(outbound: f.direction == .inbound ? nil : half, inbound: f.direction == .inbound ? [half] : [])
                continue
            }
            let key = Array(id)
            var entry = pending[key] ?? Pending(firstSeenNanos: now)
            let full = (pending[key] == nil && pending.count >= capacity) || !fits(half)
                || (f.direction == .inbound && entry.inbound.count >= Self.maxAttempts)
            if full {
                counters.add(.pairTableFull)
                emit(outbound: f.direction == .outbound ? half : nil, inbound: f.direction == .inbound ? [half] : [])
                continue
            }
            if f.direction == .outbound {
                if let earlier = entry.outbound {
                    unpin(earlier)
                    emit(outbound: earlier, inbound: [])
                }
                entry.outbound = half
            } else {
                entry.inbound.append(half)
            }
            pin(half)
            if let outbound = entry.outbound, let final = confirmed(outbound, entry.inbound) {
                var attempts = entry.inbound
                attempts.remove(at: final)
                unpin(entry)
                emit(outbound: outbound, inbound: [entry.inbound[final]] + attempts)
                pending[key] = nil
            } else {
                pending[key] = entry
            }
        }
        return finish()
    }

    /// Emits the halves whose window ended; returns them, if any.
    func expire(now: UInt64) -> EncodedBatch? {
        for (key, entry) in pending where now &- entry.firstSeenNanos >= windowNanos {
            pending[key] = nil
            unpin(entry)
            // Same request id on both sides but no connection confirmed it: still one request.
            emit(outbound: entry.outbound, inbound: entry.inbound.reversed())
        }
        return finish()
    }

    /// The inbound entry that the outbound one's connection confirms (the last attempt), or, when
    /// either side logged no addresses, the latest inbound one.
    private func confirmed(_ outbound: Half, _ inbound: [Half]) -> Int? {
        guard !inbound.isEmpty else { return nil }
        let o = outbound.facts
        let table = outbound.batch.facts!
        if o.linkFrom.length == 0 || o.linkTo.length == 0 { return inbound.count - 1 }
        for (i, half) in inbound.enumerated().reversed() {
            let f = half.facts
            let other = half.batch.facts!
            if f.linkFrom.length == 0 || f.linkTo.length == 0 { return i }
            if table.bytes(o.linkFrom).elementsEqual(other.bytes(f.linkFrom))
                && table.bytes(o.linkTo).elementsEqual(other.bytes(f.linkTo)) {
                return i
            }
        }
        return nil
    }

    /// Writes one record: a pair (`inbound[0]` the final attempt, the rest earlier ones) or a
    /// lone half, in JSON and text, with both halves' facts for filters.
    private func emit(outbound: Half?, inbound: [Half]) {
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
    }

    /// `"name":{...}` from a half's JSON line, when the line has that object.
    private func section(_ name: StaticString, _ half: Half, _ keyPath: KeyPath<JSONSections, Range<UInt32>>) {
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
    private func line(_ half: Half) {
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
    private func rebased(_ half: Half) -> EntryFacts {
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
        return f
    }

    /// The records written since the last call, as one batch; nil if none.
    private func finish() -> EncodedBatch? {
        defer {
            json.removeAll()
            text.removeAll()
            pool.removeAll()
            jsonEnds.removeAll(keepingCapacity: true)
            textEnds.removeAll(keepingCapacity: true)
            facts.removeAll(keepingCapacity: true)
        }
        guard !jsonEnds.isEmpty else { return nil }
        return EncodedBatch(
            entryCount: jsonEnds.count, isTCP: false,
            json: EncodedLines(bytes: json.take(), lineEnds: jsonEnds),
            text: EncodedLines(bytes: text.take(), lineEnds: textEnds),
            facts: EntryFactsTable(facts: facts, strings: pool.take(), stride: 2),
            decodedAtNanos: monotonicNanos())
    }
}
