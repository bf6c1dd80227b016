import ALSTapAggregate
import ALSTapALS
import ALSTapCore
import ALSTapFilter
import ALSTapFormats
import ALSTapHTTP1
import ALSTapMetrics
import ALSTapTestSupport
import Foundation
import Testing

final class FakeClock {
    var now: UInt64 = 100 * second
    func advance(seconds: Double) { now += UInt64(seconds * 1e9) }
}

func topQuery(_ text: String) throws(TapQuery.Error) -> TopQuery {
    try TopQuery(RequestTarget("/top?" + text).query)
}

func written(_ subscriber: Subscriber) -> String { drainedText(subscriber) }

func sink(_ text: String, clock: FakeClock, counters: Counters = Counters(), maxGroups: Int = 100) -> TopSink {
    let query = try! topQuery(text)
    let output = Subscriber(format: query.tap.format, filter: nil, capacityLines: 100, counters: counters, clock: { clock.now })
    return TopSink(query: query, output: output, limits: TopLimits(maxGroups: maxGroups, budget: TopBudget(limit: 1 << 30)),
                   counters: counters, clock: { clock.now })
}

/// The bytes as text (the buffer kept alive while read).
func text(_ bytes: SharedBytes) -> String {
    withExtendedLifetime(bytes) { String(decoding: bytes.bytes, as: UTF8.self) }
}

func json(_ line: Substring) -> [String: Any] {
    try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
}

/// A `/top` subscriber: what it counts, when it writes, how it ends.
@Suite struct TopSinkTests {
    @Test func snapshotsComeEveryIntervalWithTheFilterApplied() {
        let clock = FakeClock()
        let top = sink("ns=demo&interval=2s", clock: clock)
        #expect(top.needs.facts == .aggregates && top.needs.formats.isEmpty, "no lines encoded for an aggregate")
        #expect(sink("", clock: clock).needs.facts == .measures, "no filter: none of the facts only filters read")
        top.offer(makeBatch([call("a.demo", "b.demo"), call("a.other", "b.other"), call("a.demo", "b.demo", code: 503)]))
        #expect(!top.tick(now: clock.now + second, wallMicros: 0), "not due yet")
        clock.advance(seconds: 2)
        #expect(top.tick(now: clock.now, wallMicros: 1_764_000_000_000_000))
        let lines = written(top.output).split(separator: "\n")
        #expect(lines.count == 1)
        let snapshot = json(lines[0])
        #expect(snapshot["type"] as? String == "top" && snapshot["by"] as? String == "edge")
        #expect(snapshot["time"] as? String == "2025-11-24T16:00:00.000000Z")
        let rows = snapshot["rows"] as! [[String: Any]]
        #expect(rows.count == 1 && rows[0]["requests"] as? Int == 2 && rows[0]["errors"] as? Int == 1)
        #expect((rows[0]["source"] as? [String: String]) == ["workload": "a", "namespace": "demo"])
        #expect(rows[0]["successRate"] as? Double == 0.5)
        #expect(!top.output.isFinishing, "follow: it goes on")
    }

    @Test func followZeroEndsAfterOneSnapshot() {
        let clock = FakeClock()
        let top = sink("follow=0&interval=100ms", clock: clock)
        top.offer(makeBatch([call("a", "b")]))
        clock.advance(seconds: 0.1)
        #expect(top.tick(now: clock.now, wallMicros: 0))
        #expect(top.output.isFinishing && top.finished)
        #expect(written(top.output).split(separator: "\n").count == 1)
        top.offer(makeBatch([call("a", "b")]))
        clock.advance(seconds: 1)
        #expect(!top.tick(now: clock.now, wallMicros: 0))
    }

    @Test func aClientThatHasNotReadTheLastSnapshotGetsNoNewOneUntilItDoes() {
        let clock = FakeClock()
        let counters = Counters()
        let top = sink("", clock: clock, counters: counters)
        clock.advance(seconds: 1)
        _ = top.tick(now: clock.now, wallMicros: 0)
        clock.advance(seconds: 1)
        _ = top.tick(now: clock.now, wallMicros: 0)
        #expect(counters.get(.topSnapshotsSkipped) == 1)
        #expect(written(top.output).split(separator: "\n").count == 1, "only the newest matters: one queued at a time")
    }

    @Test func shutdownEndsTheStreamWithItsNotice() {
        let clock = FakeClock()
        let top = sink("format=text", clock: clock)
        top.finish(notice: .shutdown)
        #expect(written(top.output) == "# alstap is shutting down\n")
        #expect(top.output.isFinishing)
    }

    @Test func missedEntriesAndOverflowAreReported() {
        let clock = FakeClock()
        let counters = Counters()
        let top = sink("", clock: clock, counters: counters, maxGroups: 1)
        top.noteLost(7, .slow)
        top.offer(makeBatch([call("a", "b"), call("a", "c")]))
        clock.advance(seconds: 1)
        _ = top.tick(now: clock.now, wallMicros: 0)
        let snapshot = json(written(top.output).split(separator: "\n")[0])
        #expect(snapshot["lost"] as? Int == 7 && snapshot["overflow"] as? Int == 1)
        #expect(counters.get(.topOverflow) == 1)
    }

    @Test func candidatesFromTheIndexAreCountedThroughTheFilter() {
        let clock = FakeClock()
        let top = sink("workload=demo/a&method=POST", clock: clock)
        top.offer(makeBatch([call("a.demo", "b.demo"), call("a.demo", "b.demo", method: "POST")]), candidates: [0, 1])
        clock.advance(seconds: 1)
        _ = top.tick(now: clock.now, wallMicros: 0)
        let rows = json(written(top.output).split(separator: "\n")[0])["rows"] as! [[String: Any]]
        #expect(rows.map { $0["requests"] as! Int } == [1])
    }
}

@Suite struct TopQueryTests {
    @Test func defaults() throws {
        let q = try topQuery("")
        #expect(q.by == .edge && q.windowSeconds == 10 && q.intervalMillis == 1000 && q.limit == 0 && q.follow)
    }

    @Test func everyTopParameterAndTheTapFilters() throws {
        let q = try topQuery("by=route&window=5m&interval=250ms&limit=20&ns=demo&code=5xx&follow=0&format=sse&pair=1")
        #expect(q.by == .route && q.windowSeconds == 300 && q.intervalMillis == 250 && q.limit == 20)
        #expect(!q.follow && q.tap.format == .sse && q.tap.pair && q.tap.filter != nil)
        #expect(try topQuery("window=30").windowSeconds == 30, "bare seconds")
    }

    @Test(arguments: [
        ("by=pod", "bad value for by"), ("window=0s", "bad value for window"), ("window=16m", "bad value for window"),
        ("window=1.5s", "bad value for window"), ("interval=10ms", "bad value for interval"),
        ("interval=2m", "bad value for interval"), ("limit=-1", "bad value for limit"), ("last=5", "last is a /tap parameter"),
        ("max_rps=5", "max_rps is a /tap parameter"), ("format=als", "bad value for format"), ("by=edge&by=route", "given twice"),
        ("bogus=1", "unknown parameter \"bogus\""), ("code=abc", "bad value for code"),
    ])
    func aBadParameterIsNamed(query: String, message: String) {
        #expect(throws: TapQuery.Error.self) { try topQuery(query) }
        do {
            _ = try topQuery(query)
        } catch {
            #expect(error.message.contains(message), "\(error.message)")
        }
    }
}

@Suite struct TopSnapshotTests {
    static func snapshot(_ rows: [TopRow]) -> TopSnapshot {
        TopSnapshot(timeMicros: 0, by: "edge", windowSeconds: 10, coveredSeconds: 10, totals: TopRow(), rows: rows, groups: rows.count)
    }

    @Test func hostileNamesStayDataInEveryFormat() {
        var row = TopRow()
        row.source = TopIdentity(kind: .workload, name: Array("a\"b\\c\u{1b}[31m\n<x>".utf8), namespace: [0xff, 0x41])
        row.destination = .unknown
        row.requests = 1
        let s = Self.snapshot([row])
        let line = text(s.encoded(as: .json))
        #expect(line.hasSuffix("\n") && line.dropLast().split(separator: "\n").count == 1)
        let parsed = json(Substring(line.dropLast()))
        let source = (parsed["rows"] as! [[String: Any]])[0]["source"] as! [String: String]
        #expect(source["workload"] == "a\"b\\c\u{1b}[31m\n<x>")
        #expect(source["namespace"] == "\u{fffd}A")
        let table = text(s.encoded(as: .text))
        #expect(!table.contains("\u{1b}"), "no terminal escapes from the data")
        #expect(table.split(separator: "\n").count == 3, "header, column names, one row: \(table)")
        let sse = text(s.encoded(as: .sse))
        #expect(sse.hasPrefix("event: top\ndata: {") && sse.hasSuffix("}\n\n"))
        #expect(sse.split(separator: "\n").count == 2)
    }

    @Test func numbersAreFixedPoint() {
        var row = TopRow()
        row.requests = 3
        row.errors = 1
        row.rps = 1.0 / 3
        row.latencyMs = TopPercentiles(p50: 1.23456, p90: 2, p99: 3, max: 4.0004)
        let line = text(Self.snapshot([row]).encoded(as: .json))
        #expect(line.contains(#""requests":3,"rps":0.333,"errors":1,"successRate":0.6667,"latencyMs":{"p50":1.235,"p90":2.000,"p99":3.000,"max":4.000}"#))
    }
}

/// `/top?scope=cluster`: the replicas' entries go to the aggregate as they come; the subscriber
/// gets the snapshots and the merge's notices.
@Suite struct ClusterTopTests {
    @Test func peersEntriesAndLostCountsGoToTheAggregate() throws {
        let clock = FakeClock()
        let top = sink("scope=cluster&interval=1s&ns=demo", clock: clock)
        var live = top.query.tap
        live.follow = true
        let settings = MergeSettings(windowNanos: second, windowEntries: 100, pairWindowNanos: second, pairTableSize: 100,
                                     pairTableBytes: 1 << 20)
        let merge = ClusterMerge<String>(subscriber: top.output, query: live, settings: settings, counters: Counters(),
                                         peers: ["a", "b"], now: clock.now, wallClock: { 0 }, aggregate: top)
        #expect(merge.facts.contains(.measures) && merge.formats.isEmpty)
        let opened = merge.tick(now: clock.now, current: ["a", "b"]).compactMap { action -> String? in
            if case .open(_, let target) = action { return target }
            return nil
        }
        #expect(opened == ["/tap?scope=local&format=als&ns=demo", "/tap?scope=local&format=als&ns=demo"],
                "filters pushed down, no history, live")
        merge.received(makeBatch([call("a.demo", "b.demo", micros: 10_000)]), from: "a", now: clock.now)
        merge.received(makeBatch([call("a.demo", "b.demo", micros: 30_000)]), from: "b", now: clock.now)
        merge.peerNotice(.lost(count: 4, reason: .slow), from: "b")
        #expect(!top.output.hasData, "no entry lines for an aggregate's subscriber")
        clock.advance(seconds: 1)
        _ = top.tick(now: clock.now, wallMicros: 0)
        let snapshot = json(written(top.output).split(separator: "\n")[0])
        let rows = snapshot["rows"] as! [[String: Any]]
        #expect(rows.count == 1 && rows[0]["requests"] as? Int == 2)
        #expect((rows[0]["latencyMs"] as! [String: Double])["max"] == 30)
        #expect(snapshot["lost"] as? Int == 4)
    }
}

/// A new aggregate starts with the ring's newest messages, counted at their receive times.
@Suite struct TopHistoryTests {
    func batch(_ entries: [TestEntry], sequence: UInt64) -> EncodedBatch {
        makeBatch(entries, sequence: sequence, formats: [])
    }

    @Test func historyWithinTheWindowIsCountedAtItsTimesAndNotAgainLive() {
        let clock = FakeClock()  // now: 100 s
        let top = sink("window=10s&interval=1s", clock: clock)
        let history = [(batch([call("old", "x")], sequence: 1), 80 * second),           // before the window
                       (batch([call("a", "b"), call("a", "b")], sequence: 2), 95 * second),
                       (batch([call("a", "c")], sequence: 3), 99 * second)]
        top.seed(history.map { (batch: $0.0, receivedNanos: $0.1) }, complete: true, serverStartedNanos: 70 * second)
        top.offer(batch([call("a", "b")], sequence: 3))  // published before the seed read the ring
        top.offer(batch([call("a", "b")], sequence: 4))  // live
        clock.advance(seconds: 1)
        _ = top.tick(now: clock.now, wallMicros: 0)
        let snapshot = json(written(top.output).split(separator: "\n")[0])
        let rows = snapshot["rows"] as! [[String: Any]]
        #expect(rows.map { $0["requests"] as! Int } == [3, 1], "2 from history and 1 live to b, 1 to c; none twice")
        #expect(snapshot["covered"] as? Double == 9.0, "complete history since a server start long ago: the whole window")
    }

    @Test func incompleteHistoryCoversFromItsOldestMessage() {
        let clock = FakeClock()
        let top = sink("window=60s&interval=1s", clock: clock)
        top.seed([(batch: batch([call("a", "b")], sequence: 7), receivedNanos: 97 * second)], complete: false,
                 serverStartedNanos: 0)
        clock.advance(seconds: 1)
        _ = top.tick(now: clock.now, wallMicros: 0)
        let snapshot = json(written(top.output).split(separator: "\n")[0])
        #expect(snapshot["covered"] as? Double == 4.0, "from the oldest message kept (97 s) to now (101 s)")
        #expect((snapshot["totals"] as! [String: Any])["requests"] as? Int == 1)
    }

    @Test func anEntryAWindowOlderThanTheNewestIsNotCounted() {
        let w = window(seconds: 3)
        add(w, [call("a", "b")], at: 10 * second)
        add(w, [call("a", "b")], at: 7 * second)       // its slot holds second 10 now
        add(w, [call("a", "b")], at: 9 * second + 1)   // a little back: counted
        #expect(w.snapshot(now: 10 * second, wallMicros: 0).rows.map(\.requests) == [2])
    }
}
