import ALSTapAggregate
import ALSTapALS
import ALSTapFilter
import ALSTapFormats
import ALSTapTestSupport
import Testing

let second: UInt64 = 1_000_000_000

/// An entry from `source` (workload.ns) to `destination`, as the source sidecar logs it.
func call(_ source: String, _ destination: String, code: UInt16 = 200, micros: Int64 = 1_000, path: String = "/",
          method: String = "GET", flags: UInt32 = 0) -> TestEntry {
    let (sw, sn) = split(source), (dw, dn) = split(destination)
    var e = TestEntry(.outbound, method: method, code: code, sourceNamespace: sn, sourceWorkload: sw,
                      destinationNamespace: dn, destinationWorkload: dw, path: path)
    e.durationMicros = micros
    e.flags = flags
    e.authority = dw + ":9080"
    e.reporterWorkload = sw
    e.reporterNamespace = sn
    return e
}

func split(_ name: String) -> (String, String) {
    let parts = name.split(separator: ".").map(String.init)
    return (parts[0], parts.count > 1 ? parts[1] : "")
}

func window(_ by: TopGrouping = .edge, seconds: Int = 10, maxGroups: Int = 100,
            budget: TopBudget = TopBudget(limit: 1 << 30), now: UInt64 = 0) -> TopWindow {
    TopWindow(grouping: by, windowSeconds: seconds, maxGroups: maxGroups, budget: budget, now: now)
}

func add(_ w: TopWindow, _ entries: [TestEntry], at now: UInt64) {
    let table = makeBatch(entries).facts!
    for i in 0..<entries.count { w.add(record: i, of: table, now: now) }
}

func labels(_ s: TopSnapshot) -> [String] { s.rows.map(TopSnapshot.label) }

/// `/top`'s logic on an injected clock: exact counts per group, the sliding window, the
/// grouping rules, the bounds.
@Suite struct TopWindowTests {
    @Test func countsAreExactPerEdgeAndSortedByRequests() {
        let w = window()
        add(w, Array(repeating: call("a.demo", "b.demo"), count: 5) + [call("a.demo", "c.demo", code: 503, flags: 1 << 5)]
               + Array(repeating: call("b.demo", "c.demo", code: 500), count: 3), at: 0)
        let s = w.snapshot(now: 5 * second / 2, wallMicros: 0)
        #expect(labels(s) == ["a.demo → b.demo", "b.demo → c.demo", "a.demo → c.demo"])
        #expect(s.rows.map(\.requests) == [5, 3, 1])
        #expect(s.rows.map(\.errors) == [0, 3, 1])
        #expect(s.rows[2].flags.map(\.code) == ["UF"])
        #expect(s.totals.requests == 9 && s.totals.errors == 4)
        #expect(s.groups == 3)
        #expect(s.coveredSeconds == 2.5, "younger than the window: the time since it began")
        #expect(abs(s.rows[0].rps - 2.0) < 1e-9)
    }

    @Test func errorsAre5xxOrAFlagWithoutAResponse() {
        let w = window()
        var tcp = call("a", "b", code: 0, flags: 1 << 14)
        tcp.isTCP = true
        var reset = call("a", "b", code: 0)
        reset.flags = 0
        add(w, [call("a", "b", code: 404), call("a", "b", code: 502), call("a", "b", code: 200, flags: 1 << 15), tcp, reset],
            at: 0)
        #expect(w.snapshot(now: second, wallMicros: 0).rows[0].errors == 2, "502 and the TCP entry with DC")
    }

    @Test func theWindowSlidesBySecondAndFreesGroupsItLeaves() {
        let w = window(seconds: 3)
        add(w, [call("old", "x")], at: 0)
        add(w, [call("new", "x"), call("new", "x")], at: 2 * second + 1)
        var s = w.snapshot(now: 2 * second + 5, wallMicros: 0)
        #expect(labels(s) == ["new → x", "old → x"])
        s = w.snapshot(now: 3 * second, wallMicros: 0)
        #expect(labels(s) == ["new → x"], "second 0 left a 3 s window at 3 s")
        #expect(s.totals.requests == 2)
        #expect(w.groupCount == 1, "the old group is freed")
        s = w.snapshot(now: 10 * second, wallMicros: 0)
        #expect(s.rows.isEmpty && s.totals.requests == 0 && w.groupCount == 0 && w.bytes == 0)
        #expect(s.totals.latencyMs == nil)
    }

    @Test func aGroupComesBackAfterItWasFreed() {
        let w = window(seconds: 2)
        add(w, [call("a", "b")], at: 0)
        _ = w.snapshot(now: 5 * second, wallMicros: 0)
        add(w, [call("a", "b"), call("a", "b")], at: 5 * second)
        #expect(w.snapshot(now: 5 * second, wallMicros: 0).rows.map(\.requests) == [2])
    }

    @Test func percentilesAreWithinOnePercentAndMaxIsExact() {
        let w = window()
        add(w, (1...100).map { call("a", "b", micros: Int64($0) * 1_000) }, at: second / 2)
        add(w, [call("a", "b", micros: 250_000)], at: 3 * second)
        let latency = w.snapshot(now: 4 * second, wallMicros: 0).rows[0].latencyMs!
        #expect(abs(latency.p50 - 51) / 51 <= 0.01)
        #expect(abs(latency.p90 - 91) / 91 <= 0.01)
        #expect(abs(latency.p99 - 100) / 100 <= 0.01)
        #expect(latency.max == 250)
    }

    @Test func routesFoldIdentifiersAndPreferTheRouteName() {
        let w = window(.route)
        var named = call("a", "b", path: "/anything/1")
        named.routeName = "catalog"
        add(w, [call("a", "b", path: "/users/42/orders/7?x=1"), call("a", "b", path: "/users/9/orders/1"),
                call("a", "b", path: "/users/9/orders/1", method: "POST"), named, named], at: 0)
        let s = w.snapshot(now: second, wallMicros: 0)
        #expect(labels(s) == ["a → b GET b:9080 /users/{id}/orders/{id}", "a → b GET b:9080 catalog",
                              "a → b POST b:9080 /users/{id}/orders/{id}"])
        #expect(s.rows.map(\.requests) == [2, 2, 1])
    }

    @Test func eachGroupingKeepsItsOwnSide() {
        let entries = [call("a.x", "b.y"), call("a.x", "c.y"), call("d.x", "c.y")]
        for (by, expected) in [(TopGrouping.destination, ["c.y", "b.y"]), (.source, ["a.x", "d.x"]), (.reporter, ["a.x", "d.x"])] {
            let w = window(by)
            add(w, entries, at: 0)
            #expect(labels(w.snapshot(now: second, wallMicros: 0)) == expected, "by=\(by)")
        }
    }

    @Test func aSideWithoutWorkloadIsItsServiceElseItsAddress() {
        var service = call("a.x", "b.y")
        service.destinationWorkload = ""
        service.destinationService = "ratings"
        var address = call("a.x", "b.y")
        address.destinationWorkload = ""
        address.destinationNamespace = ""
        address.destinationAddress = "10.0.0.9:9080"
        var inbound = TestEntry(.inbound)
        inbound.sourceAddress = "10.0.0.7"
        inbound.destinationWorkload = "b"
        let w = window()
        add(w, [service, service, address, inbound], at: 0)
        let rows = w.snapshot(now: second, wallMicros: 0).rows
        #expect(rows.map { $0.destination!.kind } == [.service, .workload, .address])
        #expect(labels(w.snapshot(now: second, wallMicros: 0)) == ["a.x → ratings.y", "10.0.0.7 → b", "a.x → 10.0.0.9:9080"])
    }

    @Test func beyondTheGroupBoundEntriesGoToOther() {
        let w = window(maxGroups: 2)
        add(w, [call("a", "1"), call("a", "2"), call("a", "3"), call("a", "4"), call("a", "1")], at: 0)
        let s = w.snapshot(now: second, wallMicros: 0)
        #expect(labels(s) == ["a → 1", "(other)", "a → 2"])
        #expect(s.rows.map(\.requests) == [2, 2, 1])
        #expect(s.overflowEntries == 2 && s.totals.requests == 5)
    }

    @Test func beyondTheByteBoundNewGroupsOfASecondGoToOther() {
        let w = window(budget: TopBudget(limit: 1))
        add(w, [call("a", "1"), call("a", "2"), call("a", "1")], at: 0)
        let s = w.snapshot(now: second, wallMicros: 0)
        #expect(s.rows.map(\.requests) == [2, 1])
        #expect(s.rows.contains { $0.other } && s.overflowEntries == 1)
    }

    @Test func everyAggregateSharesOneBudgetAndGivesBackWhatItHeld() {
        let budget = TopBudget(limit: 1 << 20)
        var first: TopWindow? = window(budget: budget)
        add(first!, (0..<20).map { call("a", "d\($0)", micros: Int64($0) * 977) }, at: 0)
        let held = budget.usedBytes
        #expect(held > 20 * 100 && held == first!.bytes, "groups, labels and sketches are charged: \(held)")
        var later: TopWindow? = window(budget: budget)
        add(later!, [call("b", "c")], at: 0)
        #expect(budget.usedBytes == held + later!.bytes)
        _ = first!.snapshot(now: 20 * second, wallMicros: 0)
        #expect(first!.bytes == 0, "nothing left in the window, nothing held")
        first = nil
        later = nil
        #expect(budget.usedBytes == 0)
    }

    @Test func aFullBudgetStopsNewGroupsInEveryAggregate() {
        let budget = TopBudget(limit: 2_000)
        let first = window(budget: budget)
        add(first, (0..<50).map { call("a", "d\($0)") }, at: 0)
        let other = window(budget: budget)
        add(other, [call("b", "c"), call("b", "e")], at: 0)
        let s = other.snapshot(now: second, wallMicros: 0)
        #expect(s.rows.map { $0.other } == [true] && s.overflowEntries == 2)
    }

    @Test func pairsCarryTheOverheadOfTheirEdge() {
        var outbound = call("a.x", "b.x", micros: 5_000)
        outbound.requestId = "r"
        var inbound = TestEntry(.inbound, sourceNamespace: "x", sourceWorkload: "a", destinationNamespace: "x",
                                destinationWorkload: "b")
        inbound.durationMicros = 3_000
        let batch = makeBatch([outbound, inbound])
        let table = EntryFactsTable(facts: batch.facts!.facts, strings: batch.facts!.strings, stride: 2)
        let w = window()
        w.add(record: 0, of: table, now: 0)
        let row = w.snapshot(now: second, wallMicros: 0).rows[0]
        #expect(row.requests == 1)
        #expect(row.latencyMs!.max == 5, "a pair counts once, with the outbound total")
        #expect(abs(row.overheadMs!.p50 - 2) / 2 <= 0.01 && row.overheadMs!.max == 2)
    }

    @Test func theLimitCutsRowsButNotGroupsOrTotals() {
        let w = window()
        add(w, [call("a", "1"), call("a", "1"), call("a", "2"), call("a", "3")], at: 0)
        let s = w.snapshot(now: second, wallMicros: 0, limit: 1)
        #expect(labels(s) == ["a → 1"] && s.groups == 3 && s.totals.requests == 4)
    }

    @Test func coveredIsTheWindowOnceItIsFull() {
        let w = window(seconds: 10)
        #expect(w.snapshot(now: 60 * second + second / 4, wallMicros: 0).coveredSeconds == 9.25)
    }
}

@Suite struct RouteFoldingTests {
    @Test(arguments: [
        ("/users/42/orders/7", "/users/{id}/orders/{id}"),
        ("/a/550e8400-e29b-41d4-a716-446655440000/b", "/a/{id}/b"),
        ("/blobs/9f86d081884c7d65?download=1", "/blobs/{id}"),
        ("/feedface/deadbeef", "/feedface/deadbeef"),
        ("/v1/api", "/v1/api"),
        ("/", "/"),
        ("", ""),
        ("/x//3/", "/x//{id}/"),
        ("/p#frag", "/p"),
    ])
    func segmentsThatNameOneThingFold(path: String, folded: String) {
        #expect(RouteFolding.fold(path) == folded)
    }
}
