import ALSTapALS
import ALSTapCore
import ALSTapFilter
import ALSTapFormats
import ALSTapMetrics
import ALSTapTestSupport
import Testing

/// A cluster tap's logic without sockets: which replicas it reads, in what order their entries
/// come out, `last=K` across replicas, and what it says when one goes or comes back.
@Suite struct ClusterMergeTests {
    typealias Merge = ClusterMerge<String>
    static let second: UInt64 = 1_000_000_000

    /// The wall clock the merges read (µs since the epoch).
    final class WallClock: @unchecked Sendable {
        var micros: Int64 = 1_764_633_600_000_000
    }

    static func merge(_ text: String, peers: [String], counters: Counters = Counters(), windowEntries: Int = 100,
                      now: UInt64 = 0, wall: WallClock = WallClock()) -> (Merge, Subscriber) {
        let q = query(text)
        let s = Subscriber(format: q.format, filter: nil, pairs: false, capacityLines: 10_000, counters: counters,
                           clock: { 0 })
        let settings = MergeSettings(windowNanos: second, windowEntries: windowEntries, pairWindowNanos: second,
                                     pairTableSize: 1_000, pairTableBytes: 1 << 30)
        return (Merge(subscriber: s, query: q, settings: settings, counters: counters, peers: peers, now: now,
                      wallClock: { wall.micros }), s)
    }

    static func opened(_ actions: [Merge.Action]) -> [String: String] {
        var out: [String: String] = [:]
        for case .open(let peer, let target) in actions { out[peer] = target }
        return out
    }

    @Test func everyPeerIsAskedForTheSameFiltersInTheReplicaFormat() {
        let (merge, _) = Self.merge("ns=demo&code=5xx", peers: ["a:1", "b:1"])
        let targets = Self.opened(merge.tick(now: 0, current: ["a:1", "b:1"]))
        #expect(targets == ["a:1": "/tap?scope=local&format=als&ns=demo&code=5xx",
                            "b:1": "/tap?scope=local&format=als&ns=demo&code=5xx"])
        #expect(Self.opened(merge.tick(now: 1, current: ["a:1", "b:1"])).isEmpty, "open ones are not reopened")
    }

    @Test func entriesComeOutInStartTimeOrderAcrossPeers() {
        let (merge, s) = Self.merge("", peers: ["a", "b"])
        _ = merge.tick(now: 0, current: ["a", "b"])
        merge.received(makeBatch(entries(3, "a", start: 10).enumerated().map { i, e in
            var e = e; e.startMicros = [10, 30, 50][i]; return e
        }), from: "a", now: 0)
        merge.received(makeBatch(entries(2, "b").enumerated().map { i, e in
            var e = e; e.startMicros = [20, 40][i]; return e
        }), from: "b", now: 0)
        #expect(written(s).isEmpty, "held within the window")
        _ = merge.tick(now: Self.second, current: ["a", "b"])
        #expect(requestIds(written(s)) == ["a-0", "b-0", "a-1", "b-1", "a-2"])
    }

    @Test func aFullWindowReleasesTheOldestAtOnce() {
        let (merge, s) = Self.merge("", peers: ["a"], windowEntries: 2)
        _ = merge.tick(now: 0, current: ["a"])
        merge.received(makeBatch(entries(5)), from: "a", now: 0)
        #expect(requestIds(written(s)) == ["r-0", "r-1", "r-2"], "two stay in the window")
    }

    @Test func aPeerThatFailsIsReportedOnceAndRetried() {
        let counters = Counters()
        let (merge, s) = Self.merge("", peers: ["a"], counters: counters)
        _ = merge.tick(now: 0, current: ["a"])
        merge.peerClosed("a", failure: "unreachable", now: 0)
        #expect(written(s) == [#"{"type":"notice","peer":"a","message":"unreachable; retrying every 2 s"}"#])
        #expect(counters.get(.peerStreamsFailed) == 1)
        #expect(Self.opened(merge.tick(now: Self.second, current: ["a"])).isEmpty, "not before the retry time")
        let retry = Self.opened(merge.tick(now: 2 * Self.second, current: ["a"]))
        #expect(retry == ["a": "/tap?scope=local&format=als&since=1764633600.000000"])
        merge.peerClosed("a", failure: "unreachable", now: 2 * Self.second)
        #expect(written(s).isEmpty, "said once until it is back")
        _ = merge.tick(now: 4 * Self.second, current: ["a"])
        merge.peerConnected("a")
        #expect(written(s) == [#"{"type":"notice","peer":"a","message":"connected"}"#])
    }

    @Test func aPeerThatLeavesTheListIsClosedAndSaid() {
        let (merge, s) = Self.merge("", peers: ["a", "b"])
        _ = merge.tick(now: 0, current: ["a", "b"])
        let actions = merge.tick(now: 1, current: ["a"])
        #expect(actions == [.close("b")])
        #expect(objects(written(s)).first?["message"] as? String == "left the peer list")
        #expect(Self.opened(merge.tick(now: 2, current: ["a", "c"])).keys.sorted() == ["c"], "a new one is read")
    }

    @Test func lastKIsTheNewestAcrossReplicasThenLive() {
        let (merge, s) = Self.merge("last=3", peers: ["a", "b"])
        let targets = Self.opened(merge.tick(now: 0, current: ["a", "b"]))
        #expect(targets["a"] == "/tap?scope=local&format=als&last=3")
        merge.received(makeBatch(entries(3, "a", start: 0)), from: "a", now: 0)  // start 0, 1, 2
        merge.received(makeBatch(entries(3, "b", start: 10)), from: "b", now: 0)  // start 10, 11, 12
        merge.peerNotice(.replayed, from: "a")
        #expect(written(s).isEmpty, "waits for every replica's replay")
        merge.peerNotice(.replayed, from: "b")
        #expect(requestIds(written(s)) == ["b-0", "b-1", "b-2"])
        merge.received(makeBatch(entries(1, "live", start: 5)), from: "a", now: 0)
        _ = merge.tick(now: Self.second, current: ["a", "b"])
        #expect(requestIds(written(s)) == ["live-0"])
    }

    @Test func aReconnectAsksForWhatTheReplicaReceivedSinceTheStreamEnded() {
        let wall = WallClock()
        let (merge, s) = Self.merge("last=3", peers: ["a"], wall: wall)
        #expect(Self.opened(merge.tick(now: 0, current: ["a"]))["a"] == "/tap?scope=local&format=als&last=3")
        merge.peerConnected("a")
        wall.micros = 1_764_633_605_000_042
        merge.peerNotice(.shutdown, from: "a")
        merge.peerClosed("a", failure: nil, now: 0)
        #expect(written(s) == [#"{"type":"notice","peer":"a","message":"shut down; retrying every 2 s"}"#])
        wall.micros += 3_000_000
        #expect(Self.opened(merge.tick(now: 3 * Self.second, current: ["a"]))["a"]
            == "/tap?scope=local&format=als&since=1764633605.000042", "no history again, and nothing missed")
        // Attempts that are never answered keep the point to resume from.
        merge.peerClosed("a", failure: "unreachable", now: 3 * Self.second)
        wall.micros += 3_000_000
        #expect(Self.opened(merge.tick(now: 6 * Self.second, current: ["a"]))["a"]
            == "/tap?scope=local&format=als&since=1764633605.000042")
        merge.peerConnected("a")
        #expect(written(s) == [#"{"type":"notice","peer":"a","message":"connected"}"#])
    }

    /// A stream that breaks before its `since=` replay ended resumes from the same point again.
    @Test func aBreakInTheMiddleOfAResumeKeepsItsPoint() {
        let wall = WallClock()
        let (merge, _) = Self.merge("", peers: ["a"], wall: wall)
        _ = merge.tick(now: 0, current: ["a"])
        merge.peerConnected("a")
        wall.micros += 1_000_000
        merge.peerClosed("a", failure: "reset", now: 0)
        #expect(Self.opened(merge.tick(now: 2 * Self.second, current: ["a"]))["a"]?.hasSuffix("&since=1764633601.000000") == true)
        merge.peerConnected("a")
        wall.micros += 1_000_000
        merge.peerClosed("a", failure: "reset", now: 2 * Self.second)
        #expect(Self.opened(merge.tick(now: 4 * Self.second, current: ["a"]))["a"]?.hasSuffix("&since=1764633601.000000") == true,
                "the replay had not ended")
        merge.peerConnected("a")
        merge.peerNotice(.replayed, from: "a")
        wall.micros += 1_000_000
        merge.peerClosed("a", failure: "reset", now: 4 * Self.second)
        #expect(Self.opened(merge.tick(now: 6 * Self.second, current: ["a"]))["a"]?.hasSuffix("&since=1764633603.000000") == true)
    }

    @Test func sinceIsAskedOfEveryReplica() {
        let (merge, _) = Self.merge("since=1764633000.5&ns=demo", peers: ["a", "b"])
        #expect(Self.opened(merge.tick(now: 0, current: ["a", "b"]))
            == ["a": "/tap?scope=local&format=als&ns=demo&since=1764633000.500000",
                "b": "/tap?scope=local&format=als&ns=demo&since=1764633000.500000"])
    }

    /// A pod that replaces another is a new address: everything it received since the tap opened
    /// is new to the tap. One that leaves and returns resumes where it left.
    @Test func aReplicaThatJoinsLaterIsAskedForAllSinceTheTapOpened() {
        let wall = WallClock()
        let (merge, s) = Self.merge("", peers: ["a"], wall: wall)
        #expect(Self.opened(merge.tick(now: 0, current: ["a"])) == ["a": "/tap?scope=local&format=als"])
        wall.micros += 7_000_000
        #expect(Self.opened(merge.tick(now: 1, current: ["a", "new"]))
            == ["new": "/tap?scope=local&format=als&since=1764633600.000000"])
        merge.peerConnected("a")
        wall.micros += 1_000_000
        #expect(merge.tick(now: 2, current: ["new"]) == [.close("a")])
        #expect(written(s) == [#"{"type":"notice","peer":"a","message":"left the peer list"}"#])
        wall.micros += 5_000_000
        #expect(Self.opened(merge.tick(now: 3, current: ["a", "new"]))
            == ["a": "/tap?scope=local&format=als&since=1764633608.000000"])
    }

    @Test func aReplicaDownFromTheStartResumesFromTheFirstAsk() {
        let wall = WallClock()
        let (merge, _) = Self.merge("", peers: ["a"], wall: wall)
        _ = merge.tick(now: 0, current: ["a"])
        merge.peerClosed("a", failure: "unreachable", now: 0)
        wall.micros += 10_000_000
        #expect(Self.opened(merge.tick(now: 2 * Self.second, current: ["a"]))["a"]
            == "/tap?scope=local&format=als&since=1764633600.000000")
    }

    @Test func theHistoryWaitEndsAfterItsDeadline() {
        let (merge, s) = Self.merge("last=2", peers: ["a", "slow"])
        _ = merge.tick(now: 0, current: ["a", "slow"])
        merge.received(makeBatch(entries(2, "a")), from: "a", now: 0)
        merge.peerNotice(.replayed, from: "a")
        _ = merge.tick(now: Merge.historyNanos, current: ["a", "slow"])
        #expect(requestIds(written(s)) == ["a-0", "a-1"])
    }

    @Test func aPeersLostCountsBecomeTheSubscribers() {
        let (merge, s) = Self.merge("", peers: ["a"])
        merge.peerNotice(.lost(count: 7, reason: .rate), from: "a")
        merge.peerNotice(.shutdown, from: "a")
        #expect(written(s) == [#"{"type":"lost","count":7,"reason":"rate"}"#])
    }

    @Test func withoutFollowTheTapEndsWhenEveryPeerHasFinished() {
        let (merge, s) = Self.merge("follow=0&last=5", peers: ["a", "b"])
        let targets = Self.opened(merge.tick(now: 0, current: ["a", "b"]))
        #expect(targets["a"] == "/tap?scope=local&format=als&follow=0&last=5")
        merge.received(makeBatch(entries(1, "a")), from: "a", now: 0)
        merge.peerClosed("a", failure: nil, now: 0)
        _ = merge.tick(now: 1, current: ["a", "b"])
        #expect(!s.isFinishing)
        merge.peerClosed("b", failure: nil, now: 1)
        #expect(merge.tick(now: 2, current: ["a", "b"]).isEmpty, "finished peers are not reopened")
        #expect(requestIds(written(s)) == ["a-0"])
        #expect(s.isFinished)
    }

    @Test func stoppingClosesWhatIsOpenAndIgnoresWhatFollows() {
        let (merge, s) = Self.merge("", peers: ["a", "b"])
        _ = merge.tick(now: 0, current: ["a", "b"])
        merge.peerClosed("b", failure: "x", now: 0)
        _ = written(s)
        #expect(merge.stop() == [.close("a")])
        merge.peerClosed("a", failure: "x", now: 0)
        #expect(merge.tick(now: 10 * Self.second, current: ["a", "b"]).isEmpty)
        #expect(written(s).isEmpty)
    }

    @Test func pairedClusterTapsJoinHalvesFromDifferentReplicas() {
        let (merge, s) = Self.merge("pair=1", peers: ["a", "b"])
        #expect(merge.formats.contains(.json) && merge.facts == .pairing)
        merge.received(makeBatch(entries(1)), from: "a", now: 0)
        merge.received(makeBatch(entries(1, direction: .inbound)), from: "b", now: 0)
        let records = objects(written(s))
        #expect(records.count == 1 && records[0]["paired"] as? Bool == true)
    }
}
