import ALSTapALS
import Foundation
import Testing

import ALSTapCore
import ALSTapMetrics

/// A batch of `entries` JSON lines of `lineBytes` bytes each, in one shared buffer.
func batch(entries: Int, lineBytes: Int = 100, sequence: UInt64 = 0) -> EncodedBatch {
    let line = String(repeating: "x", count: lineBytes - 1) + "\n"
    let bytes = SharedBytes(String(repeating: line, count: entries))
    var batch = EncodedBatch(entryCount: entries, isTCP: false,
                             json: EncodedLines(bytes: bytes, lineEnds: (1...entries).map { UInt32($0 * lineBytes) }),
                             text: nil, facts: nil, decodedAtNanos: 0)
    batch.sequence = sequence
    return batch
}

/// Everything a subscriber has queued, as text.
func drain(_ subscriber: Subscriber) -> String {
    var out: [UInt8] = []
    subscriber.forEachQueuedSlice { slice in
        out += slice
        return true
    }
    subscriber.consume(out.count)
    return String(decoding: out, as: UTF8.self)
}

/// A subscriber's queue holds whole shared batches in memory: it is bounded in those bytes,
/// per subscriber and for all of them together, and gives them back when it is done.
@Suite struct SubscriberBoundsTests {
    @Test func aQueueChargesEachSharedBufferOnce() {
        let counters = Counters()
        let subscriber = Subscriber(format: .json, filter: nil, capacityLines: 1_000, counters: counters, clock: { 0 })
        let b = batch(entries: 10)
        subscriber.offer(b, entries: 0..<3, decodedAt: 0)
        subscriber.offer(b, entries: 5..<7, decodedAt: 0)
        #expect(subscriber.pinnedBytes == 1_000)
        #expect(counters.get(.subscriberQueuedBytes) == 1_000)
        #expect(drain(subscriber).utf8.count == 500)
        #expect(subscriber.pinnedBytes == 0)
        #expect(counters.get(.subscriberQueuedBytes) == 0)
    }

    @Test func sseFramingDoesNotChargeTheBufferAgain() {
        let counters = Counters()
        let subscriber = Subscriber(format: .sse, filter: nil, capacityLines: 1_000, counters: counters, clock: { 0 })
        subscriber.offer(batch(entries: 10))
        #expect(subscriber.pinnedBytes == 1_000)
        let text = drain(subscriber)
        #expect(text.components(separatedBy: "data: ").count == 11)
        #expect(counters.get(.subscriberQueuedBytes) == 0)
    }

    @Test func aSparseReaderCannotPinMoreThanItsBound() {
        let counters = Counters()
        // Lines bound generous, bytes bound 10 batches: a filter keeping 1 line of each batch
        // would otherwise pin every batch it touched.
        let subscriber = Subscriber(format: .json, filter: nil, capacityLines: 100_000, capacityBytes: 10 * 10_000,
                                    counters: counters, clock: { 0 })
        for _ in 0..<50 { subscriber.offer(batch(entries: 100), entries: 0..<1, decodedAt: 0) }
        #expect(subscriber.pinnedBytes <= 100_000)
        #expect(subscriber.queuedLines == 10)
        #expect(counters.get(.linesDroppedBytes) == 40)
        #expect(counters.get(.linesDropped) == 40)
        // It tells the client once the queue drained.
        let text = drain(subscriber) + drain(subscriber)
        #expect(text.hasSuffix("{\"type\":\"lost\",\"count\":40,\"reason\":\"slow\"}\n"))
    }

    @Test func allSubscribersTogetherAreBounded() {
        let counters = Counters()
        counters.add(.subscribersActive, 5)
        let subscribers = (0..<5).map { _ in
            Subscriber(format: .json, filter: nil, capacityLines: 100_000, capacityBytes: 1 << 20,
                       totalCapacityBytes: 30_000, counters: counters, clock: { 0 })
        }
        for _ in 0..<10 {
            let b = batch(entries: 100)  // 10 000 bytes, shared by all five
            for subscriber in subscribers { subscriber.offer(b) }
        }
        // At most twice the bound: each queue may still take its fair share (6 000) once the
        // total is reached.
        #expect(counters.get(.subscriberQueuedBytes) <= 60_000)
        #expect(counters.get(.linesDroppedBytes) > 0)
        for subscriber in subscribers { subscriber.release() }
        #expect(counters.get(.subscriberQueuedBytes) == 0)
    }

    @Test func stuckReadersDoNotStarveOneThatKeepsUp() {
        let counters = Counters()
        counters.add(.subscribersActive, 21)
        let stuck = (0..<20).map { _ in
            Subscriber(format: .json, filter: nil, capacityLines: 100_000, capacityBytes: 100_000,
                       totalCapacityBytes: 200_000, counters: counters, clock: { 0 })
        }
        let healthy = Subscriber(format: .json, filter: nil, capacityLines: 100_000, capacityBytes: 100_000,
                                 totalCapacityBytes: 200_000, counters: counters, clock: { 0 })
        var delivered = 0
        for _ in 0..<100 {
            let b = batch(entries: 10)  // 1 000 bytes
            for subscriber in stuck { subscriber.offer(b) }
            healthy.offer(b)
            delivered += drain(healthy).split(separator: "\n").filter { $0.hasPrefix("xxx") }.count
        }
        #expect(counters.get(.subscriberQueuedBytes) >= 200_000, "the stuck ones filled the total")
        #expect(delivered == 1_000, "the reader that keeps up lost nothing")
        #expect(counters.get(.subscriberQueuedBytes) <= 2 * 200_000)
    }

    @Test func aSubscriberThatGoesAwayGivesItsBytesBack() {
        let counters = Counters()
        do {
            let subscriber = Subscriber(format: .json, filter: nil, capacityLines: 100, counters: counters, clock: { 0 })
            subscriber.offer(batch(entries: 5))
            #expect(counters.get(.subscriberQueuedBytes) == 500)
        }
        #expect(counters.get(.subscriberQueuedBytes) == 0)
    }

    @Test func aBatchThatDoesNotFitLeavesNoCharge() {
        let counters = Counters()
        let subscriber = Subscriber(format: .json, filter: nil, capacityLines: 5, counters: counters, clock: { 0 })
        subscriber.offer(batch(entries: 4))
        subscriber.offer(batch(entries: 4))  // over the lines bound: dropped whole
        #expect(subscriber.pinnedBytes == 400)
        #expect(counters.get(.subscriberQueuedBytes) == 400)
    }
}

/// `last=K` replays are gathered a few ring messages at a time and then put in front of what
/// arrived live meanwhile.
@Suite struct ReplayTests {
    /// A ring message of `count` entries whose paths are `/p/<first + i>`.
    static func record(_ sequence: UInt64, first: Int, count: Int) -> ReplayRing.Record {
        var logs: [UInt8] = []
        for i in first..<(first + count) {
            let path = Array("/p/\(i)".utf8)
            let request = [0x2A, UInt8(path.count)] + path          // HTTPRequestProperties.path = 5
            let entry = [0x1A, UInt8(request.count)] + request     // HTTPAccessLogEntry.request = 3
            logs += [0x0A, UInt8(entry.count)] + entry              // log_entry = 1
        }
        let message = [0x12, UInt8(logs.count)] + logs              // http_logs = 2
        return ReplayRing.Record(sequence: sequence, payload: message.withUnsafeBytes { SharedBytes(copying: $0) },
                                 reporter: Reporter(), entries: count)
    }

    static func paths(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "\"path\":\"") else { return nil }
            return String(line[range.upperBound...].prefix { $0 != "\"" })
        }
    }

    @Test func theRingIsBoundedInEntriesAndBytes() {
        let capacity = 5 * Self.record(1, first: 0, count: 2).bytes  // a record counts its reporter too
        let ring = ReplayRing(capacityEntries: 100, capacityBytes: capacity, section: OneThread())
        for i in 0..<20 { ring.append(Self.record(UInt64(i + 1), first: i * 2, count: 2)) }
        let newest = ring.newest()!
        #expect(newest.sequence == 20)
        let kept = ring.records(through: newest.position, count: 100)
        #expect(kept.reduce(0) { $0 + $1.bytes } <= capacity)
        #expect(kept.count >= 4)
        #expect(kept.first?.sequence == 20)
        #expect(ring.records(through: newest.position - kept.count, count: 10).isEmpty, "older ones were evicted")
    }

    @Test func aReplayIsGatheredInStepsAndGoesBeforeLiveLines() {
        let counters = Counters()
        let ring = ReplayRing(capacityEntries: 1_000, section: OneThread())
        for i in 0..<10 { ring.append(Self.record(UInt64(i + 1), first: i * 3, count: 3)) }
        let subscriber = Subscriber(format: .json, filter: nil, capacityLines: 1_000, counters: counters, clock: { 0 })
        let job = ReplayJob(subscriber: subscriber, count: 7, ring: ring, counters: counters)!
        #expect(subscriber.replayedThrough == 10)
        // Live lines arrive meanwhile; nothing is written while the replay is pending.
        subscriber.offer(batch(entries: 1, sequence: 11))
        subscriber.offer(batch(entries: 1, sequence: 9))  // covered by the replay: skipped
        #expect(!subscriber.hasData)
        var steps = 0
        while !job.step(ring: ring, redecode: redecode, budget: 1).done { steps += 1 }
        #expect(steps == 2, "7 entries of 3-entry messages: three messages, one per step")
        #expect(subscriber.hasData)
        let lines = drain(subscriber).split(separator: "\n")
        #expect(Self.paths(lines.dropLast().joined(separator: "\n")) == (23...29).map { "/p/\($0)" })
        #expect(lines.last?.hasPrefix("xxx") == true, "the live line comes after the replay")
    }

    @Test func aReplayHoldsNoMoreThanTheSubscribersBytesBound() {
        let counters = Counters()
        let ring = ReplayRing(capacityEntries: 10_000, section: OneThread())
        for i in 0..<100 { ring.append(Self.record(UInt64(i + 1), first: i * 10, count: 10)) }
        // Each decoded message is about 10 lines of ~100 bytes: a 3 KB bound holds about 3.
        let subscriber = Subscriber(format: .json, filter: nil, capacityLines: 10_000, capacityBytes: 3_000,
                                    counters: counters, clock: { 0 })
        let job = ReplayJob(subscriber: subscriber, count: 1_000, ring: ring, counters: counters)!
        var steps = 0
        while !job.step(ring: ring, redecode: redecode, budget: 8).done { steps += 1 }
        #expect(steps < 3, "it stopped gathering at the bound, not after 100 messages")
        let paths = Self.paths(drain(subscriber))
        #expect(paths.last == "/p/999", "the newest entries are the ones kept")
        #expect(paths.count < 100)
        subscriber.release()
        #expect(counters.get(.subscriberQueuedBytes) == 0)
    }

    @Test func aReplayOfAnEmptyRingIsNothing() {
        let subscriber = Subscriber(format: .json, filter: nil, capacityLines: 10, counters: Counters(), clock: { 0 })
        #expect(ReplayJob(subscriber: subscriber, count: 5, ring: ReplayRing(capacityEntries: 10, section: OneThread()), counters: Counters()) == nil)
        #expect(!subscriber.replayPending)
    }

    @Test func aFinishedReplayWithoutFollowEndsAfterTheEntries() {
        let ring = ReplayRing(capacityEntries: 1_000, section: OneThread())
        ring.append(Self.record(1, first: 0, count: 3))
        let subscriber = Subscriber(format: .json, filter: nil, capacityLines: 100, counters: Counters(), clock: { 0 })
        let job = ReplayJob(subscriber: subscriber, count: 100, ring: ring, counters: Counters())!
        subscriber.finish(notice: nil)
        #expect(!subscriber.isFinished, "not before the replay was written")
        #expect(job.step(ring: ring, redecode: redecode, budget: 8).done)
        #expect(Self.paths(drain(subscriber)) == ["/p/0", "/p/1", "/p/2"])
        #expect(subscriber.isFinished)
    }
}

/// The pairer holds halves (and so their whole batches) while they wait for their twin: bounded
/// in entries, in the bytes of the batches held, and in attempts per request id.
@Suite struct PairerBoundsTests {
    /// One message of `count` outbound (or inbound) HTTP entries with request ids `<tag>-<i>`.
    static func batch(_ tag: String, count: Int, inbound: Bool = false, sameId: Bool = false) throws -> EncodedBatch {
        func field(_ number: UInt8, _ payload: [UInt8]) -> [UInt8] {
            precondition(payload.count < 128)
            return [number << 3 | 2, UInt8(payload.count)] + payload
        }
        var logs: [UInt8] = []
        for i in 0..<count {
            let cluster = inbound ? "inbound|9080||" : "outbound|9080||reviews.default.svc.cluster.local"
            let common = field(15, Array(cluster.utf8))
            let request = field(9, Array((sameId ? "\(tag)" : "\(tag)-\(i)").utf8))
            let entry = field(1, common) + field(3, request)
            logs += [0x0A] + varint(entry.count) + entry
        }
        let message = [0x12] + varint(logs.count) + logs
        var reporter = Reporter()
        return try message.withUnsafeBytes {
            try ALSDecoder().decode($0, reporter: &reporter, formats: .json, facts: .pairing, decodedAtNanos: 0)
        }
    }

    static func varint(_ value: Int) -> [UInt8] {
        var v = value, out: [UInt8] = []
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        return out + [UInt8(v)]
    }

    @Test func halvesOverTheByteBoundComeOutAlone() throws {
        let counters = Counters()
        let first = try Self.batch("b0", count: 10)  // each of the five is this size
        let bound = first.encodedBytes * 2 + 10  // its lines and its facts
        let pairer = Pairer(windowNanos: 1_000_000_000, capacity: 1_000, capacityBytes: bound, counters: counters)
        var alone = 0
        for i in 0..<5 {
            if let out = pairer.add(try Self.batch("b\(i)", count: 10), now: 0) { alone += out.entryCount }
            #expect(pairer.pinnedBytes <= bound)
        }
        #expect(alone == 30, "two batches wait, the other three come out alone")
        #expect(counters.get(.pairTableFull) == 30)
        _ = pairer.expire(now: 2_000_000_000)
        #expect(pairer.pinnedBytes == 0, "every batch is let go once its halves left")
    }

    @Test func aFloodOfOneRequestIdKeepsFewAttempts() throws {
        let counters = Counters()
        let pairer = Pairer(windowNanos: 1_000_000_000, capacity: 1_000, counters: counters)
        let out = pairer.add(try Self.batch("same", count: 100, inbound: true, sameId: true), now: 0)
        #expect(out?.entryCount == 100 - Pairer.maxAttempts)
        let expired = pairer.expire(now: 2_000_000_000)
        #expect(expired?.entryCount == 1, "one record with the attempts it kept")
        #expect(pairer.pinnedBytes == 0)
    }

    @Test func pairedHalvesLetTheirBatchesGo() throws {
        let pairer = Pairer(windowNanos: 1_000_000_000, capacity: 1_000, counters: Counters())
        #expect(pairer.add(try Self.batch("p", count: 5), now: 0) == nil)
        #expect(pairer.pinnedBytes > 0)
        let paired = pairer.add(try Self.batch("p", count: 5, inbound: true), now: 1)
        #expect(paired?.entryCount == 5)
        #expect(pairer.pinnedBytes == 0)
    }
}

/// Decodes ring records again with a fresh ALS decoder (what the server's loops do).
func redecode(_ record: ReplayRing.Record, _ formats: FormatSet, _ facts: FactsNeed) -> EncodedBatch? {
    var reporter = record.reporter
    return try? ALSDecoder().decode(record.payload.bytes, reporter: &reporter, formats: formats, facts: facts,
                                    decodedAtNanos: 0)
}
