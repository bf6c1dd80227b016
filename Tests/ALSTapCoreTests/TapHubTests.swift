import ALSTapALS
import ALSTapCore
import ALSTapFormats
import ALSTapMetrics
import ALSTapTestSupport
import Testing

/// One loop's taps, driven by hand: admission, delivery through the index or not, pairing,
/// shutdown, and sinks that are not sockets.
@Suite struct TapHubTests {
    @Test func aSubscriberGetsTheLiveEntriesItsFilterWants() {
        let taps = hub()
        let all = subscriber()
        let demo = subscriber("ns=b")
        let other = subscriber("ns=zzz")
        for s in [all, demo, other] { #expect(taps.open(s, last: 0, follow: true)) }
        taps.deliver([makeBatch(entries(3)), makeBatch(entries(2, "q", from: "x", to: "y"))], dropped: 0, now: 0)
        #expect(requestIds(written(all)) == ["r-0", "r-1", "r-2", "q-0", "q-1"])
        #expect(requestIds(written(demo)) == ["r-0", "r-1", "r-2"])
        #expect(written(other).isEmpty)
    }

    @Test func aSinkThatIsNotASocketPlugsInTheSameWay() {
        let taps = hub()
        let counting = CountingSink("ns=b")
        let firehose = CountingSink()
        #expect(taps.add(counting))
        #expect(taps.add(firehose))
        taps.deliver([makeBatch(entries(4)), makeBatch(entries(3, from: "x", to: "y"))], dropped: 0, now: 0)
        #expect(counting.seen == 4, "the index offered it only its namespace")
        #expect(firehose.seen == 7)
        #expect(counting.rounds == 1 && firehose.rounds == 1)
        taps.finishAll()
        #expect(counting.finishedWith == .some(.shutdown))
    }

    @Test func theLimitRefusesAndCounts() {
        let counters = Counters()
        let taps = hub(counters: counters, maxSubscribers: 2)
        #expect(taps.open(subscriber(counters: counters), last: 0, follow: true))
        let second = subscriber(counters: counters)
        #expect(taps.open(second, last: 0, follow: true))
        #expect(!taps.open(subscriber(counters: counters), last: 0, follow: true))
        #expect(counters.get(.subscribersRejected) == 1)
        #expect(counters.get(.subscribersActive) == 2)
        taps.remove(second)
        #expect(counters.get(.subscribersActive) == 1)
        #expect(taps.open(subscriber(counters: counters), last: 0, follow: true), "a freed place is taken again")
    }

    @Test func removingTwiceIsHarmless() {
        let counters = Counters()
        let taps = hub(counters: counters)
        let s = subscriber(counters: counters)
        #expect(taps.open(s, last: 0, follow: true))
        taps.remove(s)
        taps.remove(s)
        #expect(counters.get(.subscribersActive) == 0)
        #expect(taps.sinkCount == 0)
    }

    @Test func aRemovedSubscriberGetsNothingMore() {
        let taps = hub()
        let s = subscriber("ns=b")
        #expect(taps.open(s, last: 0, follow: true))
        taps.remove(s)
        taps.deliver([makeBatch(entries(3))], dropped: 0, now: 0)
        #expect(written(s).isEmpty)
    }

    @Test func drainingAdmitsNoOneDeliversStillAndThenEndsEveryoneWithANotice() {
        let taps = hub()
        let json = subscriber()
        let text = subscriber("format=text")
        #expect(taps.open(json, last: 0, follow: true))
        #expect(taps.open(text, last: 0, follow: true))
        taps.beginShutdown()
        #expect(!taps.open(subscriber(), last: 0, follow: true))
        taps.deliver([makeBatch(entries(1, "late"))], dropped: 0, now: 0)
        #expect(requestIds(written(json)) == ["late-0"], "entries still arriving while the ingest streams end")
        _ = written(text)
        taps.finishAll()
        #expect(written(json) == [#"{"type":"shutdown"}"#])
        #expect(written(text) == ["# alstap is shutting down"])
        #expect(json.isFinished && text.isFinished)
    }

    @Test func withoutFollowAndNothingToReplayTheStreamEndsAtOnce() {
        let taps = hub()
        let s = subscriber("last=5&follow=0")
        #expect(taps.open(s, last: 5, follow: false))
        #expect(s.isFinished)
    }

    @Test func droppedHandOffsBecomeLostNoticesForEverySink() {
        let taps = hub()
        let s = subscriber()
        let sink = CountingSink()
        #expect(taps.open(s, last: 0, follow: true))
        #expect(taps.add(sink))
        taps.deliver([], dropped: 42, now: 0)
        #expect(written(s) == [#"{"type":"lost","count":42,"reason":"slow"}"#])
        #expect(sink.lost == 42)
    }

    @Test func theDemandFollowsTheSinks() {
        let demand = DemandLog()
        let taps = hub(demand: demand)
        let text = subscriber("format=text")
        let paired = subscriber("pair=1")
        let filtered = subscriber("ns=a")
        for s in [text, paired, filtered] { #expect(taps.open(s, last: 0, follow: true)) }
        #expect(demand.formats[.text] == 1)
        #expect(demand.formats[.json] == 2, "a pairing subscriber needs JSON lines")
        #expect(demand.facts[.pairing] == 1 && demand.facts[.filters] == 1 && demand.facts[.none] == 1)
        for s in [text, paired, filtered] { taps.remove(s) }
        #expect(demand.formats.values.allSatisfy { $0 == 0 } && demand.facts.values.allSatisfy { $0 == 0 })
    }

    @Test func thePairerRunsOnlyWhileSomeonePairs() {
        let taps = hub()
        #expect(!taps.isPairing)
        let a = subscriber("pair=1")
        let b = subscriber("pair=1")
        #expect(taps.open(a, last: 0, follow: true))
        #expect(taps.open(b, last: 0, follow: true))
        #expect(taps.isPairing)
        taps.remove(a)
        #expect(taps.isPairing)
        taps.remove(b)
        #expect(!taps.isPairing)
    }

    @Test func pairingSubscribersGetRecordsOthersGetEntries() throws {
        let taps = hub(pairWindowSeconds: 1)
        let paired = subscriber("pair=1")
        let plain = subscriber()
        #expect(taps.open(paired, last: 0, follow: true))
        #expect(taps.open(plain, last: 0, follow: true))
        taps.deliver([makeBatch(entries(2)), makeBatch(entries(2, direction: .inbound))], dropped: 0, now: 0)
        let records = objects(written(paired))
        #expect(records.count == 2)
        #expect(records.allSatisfy { $0["type"] as? String == "pair" && $0["paired"] as? Bool == true })
        #expect(requestIds(written(plain)).count == 4)
    }

    @Test func aLoneHalfComesOutWhenItsWindowEnds() {
        let taps = hub(pairWindowSeconds: 1)
        let paired = subscriber("pair=1")
        #expect(taps.open(paired, last: 0, follow: true))
        taps.deliver([makeBatch(entries(1))], dropped: 0, now: 0)
        #expect(written(paired).isEmpty)
        taps.expirePairs(now: 500_000_000)
        #expect(written(paired).isEmpty, "still within its window")
        taps.expirePairs(now: 1_000_000_000)
        let records = objects(written(paired))
        #expect(records.count == 1 && records[0]["paired"] as? Bool == false)
    }
}
