import ALSTapALS
import ALSTapCore
import ALSTapFormats
import ALSTapMetrics
import ALSTapTestSupport
import Testing

/// A subscriber's queue: filters, the rate limit and lost notices on an injected clock, formats,
/// and how a transport pulls it.
@Suite struct SubscriberTests {
    @Test func theRateLimitAllowsABurstThenRefillsWithTime() {
        var limit = RateLimit(perSecond: 3, now: 0)
        #expect((0..<5).filter { _ in limit.take() }.count == 3)
        limit.refill(now: 500_000_000)
        #expect((0..<5).filter { _ in limit.take() }.count == 1, "half a second earns 1.5 tokens")
        limit.refill(now: 10_000_000_000)
        #expect((0..<10).filter { _ in limit.take() }.count == 3, "never more than one second's burst")
    }

    @Test func overTheRateEntriesAreSkippedAndTheNoticeSaysHowMany() {
        let clock = FakeClock()
        let counters = Counters()
        let s = subscriber("max_rps=2", counters: counters, clock: clock)
        s.offer(makeBatch(entries(5)))
        let lines = written(s)
        #expect(requestIds(lines) == ["r-0", "r-1"])
        #expect(lines.last == #"{"type":"lost","count":3,"reason":"rate"}"#)
        #expect(counters.get(.linesRateLimited) == 3)
        clock.advance(seconds: 1)
        s.offer(makeBatch(entries(2, "q")))
        #expect(requestIds(written(s)) == ["q-0", "q-1"], "a second later the bucket is full again")
    }

    @Test func aFullQueueDropsTheBatchAndSaysSoOnceDrained() {
        let counters = Counters()
        let s = subscriber(counters: counters, lines: 4)
        s.offer(makeBatch(entries(3)))
        s.offer(makeBatch(entries(3, "q")))  // 6 > 4: dropped whole
        let lines = written(s)
        #expect(requestIds(lines) == ["r-0", "r-1", "r-2"])
        #expect(lines.last == #"{"type":"lost","count":3,"reason":"slow"}"#)
        #expect(counters.get(.linesDropped) == 3)
        #expect(written(s).isEmpty, "said once")
    }

    @Test func lostNoticesInTextAndSSE() {
        let text = subscriber("format=text", lines: 1)
        text.offer(makeBatch(entries(2)))
        #expect(written(text) == ["# lost 2 entries: this subscriber read too slowly"])
        let sse = subscriber("format=sse", lines: 1)
        sse.offer(makeBatch(entries(2)))
        #expect(written(sse) == ["event: lost", #"data: {"type":"lost","count":2,"reason":"slow"}"#])
    }

    @Test func sseWrapsEveryEntryInAnEvent() {
        let s = subscriber("format=sse")
        s.offer(makeBatch(entries(2)))
        let lines = written(s)
        #expect(lines.count == 2)
        #expect(lines.allSatisfy { $0.hasPrefix("data: {") })
    }

    @Test func aWriteMayStopInTheMiddleOfALine() {
        let s = subscriber()
        s.offer(makeBatch(entries(2)))
        var first: [UInt8] = []
        s.forEachQueuedSlice { slice in
            first += slice.prefix(10)
            return false
        }
        s.consume(first.count)
        var rest: [UInt8] = []
        s.forEachQueuedSlice { slice in
            rest += slice
            return true
        }
        s.consume(rest.count)
        let text = String(decoding: first + rest, as: UTF8.self)
        #expect(requestIds(text.split(separator: "\n").map(String.init)) == ["r-0", "r-1"])
        #expect(!s.hasData)
    }

    @Test func deliveryLatencyIsMeasuredOnTheInjectedClock() {
        let clock = FakeClock()
        let counters = Counters()
        let s = subscriber(counters: counters, clock: clock)
        s.offer(makeBatch(entries(1), decodedAtNanos: clock.now))
        clock.advance(seconds: 0.004)
        _ = written(s)
        #expect(counters.deliveryLatency.count == 1)
        #expect((3_500...4_700).contains(counters.deliveryLatency.quantile(0.5)), "about 4 ms, in µs")
    }

    @Test func finishingWaitsForTheQueueAndKeepsTheNoticeLast() {
        let s = subscriber()
        s.offer(makeBatch(entries(2)))
        s.finish(notice: .shutdown)
        #expect(!s.isFinished)
        s.offer(makeBatch(entries(2, "late")))
        let lines = written(s)
        #expect(requestIds(lines) == ["r-0", "r-1"], "nothing is taken after finishing")
        #expect(lines.last == #"{"type":"shutdown"}"#)
        #expect(s.isFinished)
    }

    @Test func theReplicaFormatFramesEachOfferAsOneMessage() {
        let counters = Counters()
        let s = Subscriber(format: .als, filter: nil, capacityLines: 100, counters: counters, clock: { 0 })
        let lines = EncodedLines(bytes: SharedBytes("AAABBB"), lineEnds: [3, 6])
        let batch = EncodedBatch(entryCount: 2, isTCP: false, json: nil, text: nil, als: lines,
                                 identifier: SharedBytes("id"), facts: nil, decodedAtNanos: 0)
        s.offer(batch)
        var out: [UInt8] = []
        s.forEachQueuedSlice { out += $0; return true }
        s.consume(out.count)
        let length = Int(out[1]) << 24 | Int(out[2]) << 16 | Int(out[3]) << 8 | Int(out[4])
        #expect(out[0] == 0 && length == out.count - 5)
        #expect(String(decoding: out.suffix(6), as: UTF8.self) == "AAABBB")
    }

    /// A replica-format batch that does not fit: the lost notice is a frame of its own, never
    /// wrapped in the entries message's header (the reading replica would fail the stream).
    @Test func aDroppedReplicaBatchSaysSoInANoticeFrameOfItsOwn() {
        let s = Subscriber(format: .als, filter: nil, capacityLines: 100, capacityBytes: 4, counters: Counters(),
                           clock: { 0 })
        let batch = EncodedBatch(entryCount: 2, isTCP: false, json: nil, text: nil,
                                 als: EncodedLines(bytes: SharedBytes("AAABBB"), lineEnds: [3, 6]),
                                 identifier: nil, facts: nil, decodedAtNanos: 0)
        s.offer(batch)
        var out: [UInt8] = []
        s.forEachQueuedSlice { out += $0; return true }
        let json = Notice.lost(count: 2, reason: .slow).json
        #expect(out.first == ReplicaFrames.noticeFlag)
        #expect(out.count == 5 + json.utf8.count)
        #expect(String(decoding: out.dropFirst(5), as: UTF8.self) == json)
    }
}
