import ALSTapALS
import ALSTapCore
import ALSTapMetrics
import ALSTapTestSupport
import Testing

/// `last=K` through the hub: history from the ring, then live entries, with no gap and no
/// duplicate at the boundary, whatever order the live hand-offs arrive in.
@Suite struct ReplayBoundaryTests {
    /// A ring record whose payload names its batch: the injected decoder turns it into entries.
    static func record(_ sequence: UInt64, entries count: Int) -> ReplayRing.Record {
        ReplayRing.Record(sequence: sequence, payload: SharedBytes("\(sequence)"), reporter: Reporter(), entries: count)
    }

    static func live(_ sequence: UInt64, entries count: Int) -> EncodedBatch {
        makeBatch(entries(count, "s\(sequence)"), sequence: sequence)
    }

    static func taps(ring: ReplayRing, counters: Counters) -> TapHub {
        TapHub(limits: TapLimits(maxSubscribers: 10, pairWindowNanos: 1, pairTableSize: 1, pairTableBytes: 1),
               counters: counters, ring: ring, demand: nil) { record, _, _ in
            let sequence = UInt64(String(decoding: record.payload.bytes, as: UTF8.self))!
            return live(sequence, entries: record.entries)
        }
    }

    @Test(arguments: [1, 4, 7, 30])
    func historyThenLiveWithNoGapAndNoDuplicate(last: Int) {
        let counters = Counters()
        let ring = ReplayRing(capacityEntries: 1_000, section: OneThread())
        for sequence in 1...5 { ring.append(Self.record(UInt64(sequence), entries: 2)) }
        let taps = Self.taps(ring: ring, counters: counters)
        let s = subscriber(counters: counters)
        #expect(taps.open(s, last: last, follow: true))
        #expect(taps.hasReplays)
        // Hand-offs still in flight when it opened (4, 5: in the ring already) and after (6, 7).
        taps.deliver([Self.live(4, entries: 2), Self.live(6, entries: 2)], dropped: 0, now: 0)
        #expect(written(s).isEmpty, "nothing before the replay is in front")
        while taps.stepReplays(clock: { 0 }) {}
        taps.deliver([Self.live(5, entries: 2), Self.live(7, entries: 2)], dropped: 0, now: 0)
        let history = (1...5).flatMap { seq in (0..<2).map { "s\(seq)-\($0)" } }.suffix(last)
        #expect(requestIds(written(s)) == Array(history) + ["s6-0", "s6-1", "s7-0", "s7-1"])
        #expect(counters.get(.replayEntriesDecoded) > 0)
    }

    /// `since=T`: every kept message received from T on, however many (a cluster tap resuming a
    /// replica's stream); with `last`, the most recent of those.
    @Test(arguments: [(0, 6), (2, 2), (100, 6)])
    func sinceReplaysWhatWasReceivedFromThenOn(last: Int, expected: Int) {
        let counters = Counters()
        let ring = ReplayRing(capacityEntries: 1_000, section: OneThread())
        for sequence in 1...5 {
            ring.append(ReplayRing.Record(sequence: UInt64(sequence), payload: SharedBytes("\(sequence)"), reporter: Reporter(),
                                          entries: 2, receivedNanos: UInt64(sequence) * 1_000))
        }
        let taps = Self.taps(ring: ring, counters: counters)
        let s = subscriber(counters: counters)
        #expect(taps.open(s, last: last, sinceNanos: 3_000, follow: false))
        while taps.stepReplays(clock: { 0 }) {}
        let received = ["s3-0", "s3-1", "s4-0", "s4-1", "s5-0", "s5-1"]
        #expect(requestIds(written(s)) == Array(received.suffix(expected)))
        #expect(s.isFinished)
    }

    @Test func sinceAfterTheNewestMessageReplaysNothing() {
        let ring = ReplayRing(capacityEntries: 1_000, section: OneThread())
        ring.append(ReplayRing.Record(sequence: 1, payload: SharedBytes("1"), reporter: Reporter(), entries: 2, receivedNanos: 10))
        let taps = Self.taps(ring: ring, counters: Counters())
        let s = subscriber()
        #expect(taps.open(s, last: 0, sinceNanos: 11, follow: true))
        while taps.stepReplays(clock: { 0 }) {}
        taps.deliver([Self.live(2, entries: 1)], dropped: 0, now: 0)
        #expect(requestIds(written(s)) == ["s2-0"])
    }

    @Test func aFilteredReplayCountsOnlyMatchingEntries() {
        let counters = Counters()
        let ring = ReplayRing(capacityEntries: 1_000, section: OneThread())
        for sequence in 1...3 { ring.append(Self.record(UInt64(sequence), entries: 2)) }
        let taps = TapHub(limits: TapLimits(maxSubscribers: 10, pairWindowNanos: 1, pairTableSize: 1, pairTableBytes: 1),
                          counters: counters, ring: ring, demand: nil) { record, _, _ in
            let sequence = Int(String(decoding: record.payload.bytes, as: UTF8.self))!
            // Odd batches are in namespace b, even ones in c.
            return makeBatch(entries(2, "s\(sequence)", to: sequence % 2 == 1 ? "b" : "c"), sequence: UInt64(sequence))
        }
        let s = subscriber("ns=b", counters: counters)
        #expect(taps.open(s, last: 3, follow: false))
        while taps.stepReplays(clock: { 0 }) {}
        #expect(requestIds(written(s)) == ["s1-1", "s3-0", "s3-1"])
        #expect(s.isFinished, "follow=0 ends after the replay")
    }

    @Test func aReplayAbandonedByItsClientLetsItsBytesGo() {
        let counters = Counters()
        let ring = ReplayRing(capacityEntries: 100_000, section: OneThread())
        for sequence in 1...200 { ring.append(Self.record(UInt64(sequence), entries: 10)) }
        let taps = Self.taps(ring: ring, counters: counters)
        let s = subscriber(counters: counters)
        #expect(taps.open(s, last: 2_000, follow: true))
        _ = taps.stepReplays(clock: { 0 })
        #expect(counters.get(.subscriberQueuedBytes) > 0, "the gathered batches are on the account")
        taps.remove(s)
        s.release()
        #expect(!taps.hasReplays)
        #expect(counters.get(.subscriberQueuedBytes) == 0)
    }

    @Test func aTurnIsBoundedInEntries() {
        let counters = Counters()
        let ring = ReplayRing(capacityEntries: 100_000, section: OneThread())
        for sequence in 1...1_000 { ring.append(Self.record(UInt64(sequence), entries: 10)) }
        let taps = Self.taps(ring: ring, counters: counters)
        for _ in 0..<10 { #expect(taps.open(subscriber(counters: counters), last: 5_000, follow: true)) }
        _ = taps.stepReplays(clock: { 0 })
        #expect(counters.get(.replayEntriesDecoded) <= TapHub.replayEntriesPerTurn + 10)
        #expect(taps.hasReplays, "the rest waits for the next turns")
    }
}

/// The history a new aggregate starts with: the newest messages, and whether they are all.
@Suite struct ReplayRingHistoryTests {
    static func record(_ sequence: UInt64, entries: Int, bytes: Int = 1) -> ReplayRing.Record {
        ReplayRing.Record(sequence: sequence, payload: SharedBytes(String(repeating: "x", count: bytes)), reporter: Reporter(),
                          entries: entries, receivedNanos: sequence * 10)
    }

    @Test func theNewestWithinTheEntriesAndWhetherNothingWasLost() {
        let ring = ReplayRing(capacityEntries: 100, section: OneThread())
        for sequence in UInt64(1)...4 { ring.append(Self.record(sequence, entries: 10)) }
        var (records, complete) = ring.newest(entries: 25)
        #expect(records.map(\.sequence) == [3, 4] && !complete, "two of four fit 25 entries")
        (records, complete) = ring.newest(entries: 40)
        #expect(records.map(\.sequence) == [1, 2, 3, 4] && complete && records.map(\.receivedNanos) == [10, 20, 30, 40])
        for sequence in UInt64(5)...11 { ring.append(Self.record(sequence, entries: 10)) }
        (records, complete) = ring.newest(entries: 1_000)
        #expect(records.first?.sequence == 2 && !complete, "the oldest was evicted")
    }

    @Test func aMessageTooLargeToKeepMakesTheRingIncomplete() {
        let ring = ReplayRing(capacityEntries: 100, capacityBytes: 1_000, section: OneThread())
        ring.append(Self.record(1, entries: 1, bytes: 10))
        #expect(ring.newest(entries: 10).complete)
        ring.append(Self.record(2, entries: 1, bytes: 5_000))
        #expect(!ring.newest(entries: 10).complete)
        #expect(!ReplayRing(capacityEntries: 0, section: OneThread()).newest(entries: 10).complete, "a disabled ring keeps nothing")
    }
}
