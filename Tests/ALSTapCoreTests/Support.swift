import ALSTapALS
import ALSTapCore
import ALSTapFilter
import ALSTapFormats
import ALSTapHTTP1
import ALSTapMetrics
import ALSTapTestSupport
import Foundation

/// Monotonic time the tests move by hand.
final class FakeClock {
    var now: UInt64 = 1_000_000_000
    func advance(seconds: Double) { now += UInt64(seconds * 1e9) }
}

/// A `/tap` query string parsed as the server parses it.
func query(_ text: String) -> TapQuery {
    try! TapQuery(RequestTarget("/tap?" + text).query)
}

/// A subscriber for `text`'s filter and format, on `clock`.
func subscriber(_ text: String = "", counters: Counters = Counters(), clock: FakeClock = FakeClock(),
                lines: Int = 10_000, bytes: Int = .max) -> Subscriber {
    let q = query(text)
    return Subscriber(format: q.format, filter: q.filter, maxEntriesPerSecond: q.maxEntriesPerSecond, pairs: q.pair,
                      capacityLines: lines, capacityBytes: bytes, counters: counters, clock: { clock.now })
}

/// Everything queued, written out as a transport does (until nothing is left): the lines a client reads.
func written(_ subscriber: Subscriber) -> [String] {
    drainedText(subscriber).split(separator: "\n").map(String.init)
}

/// The JSON objects among `lines`.
func objects(_ lines: [String]) -> [[String: Any]] {
    lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}

/// The request ids of the entry lines (notices have none).
func requestIds(_ lines: [String]) -> [String] {
    objects(lines).compactMap { $0["requestId"] as? String }
}

/// Entries with request ids `prefix-0`…, between namespaces `from` and `to`.
func entries(_ count: Int, _ prefix: String = "r", direction: Direction = .outbound, from: String = "a",
             to: String = "b", start: Int64 = 0) -> [TestEntry] {
    (0..<count).map { i in
        var e = TestEntry(direction, sourceNamespace: from, sourceWorkload: "w-\(from)", destinationNamespace: to,
                          destinationWorkload: "w-\(to)", path: "/p/\(i)", requestId: "\(prefix)-\(i)")
        e.startMicros = start + Int64(i)
        return e
    }
}

/// A sink that is not a socket: it counts what it is offered (as an aggregator would).
final class CountingSink: TapSink {
    let filter: TapFilter?
    let pairs = false
    var needs: SinkNeeds { SinkNeeds(formats: [], facts: filter == nil ? .none : .filters) }
    private(set) var seen = 0
    private(set) var lost = 0
    private(set) var finishedWith: Notice??
    private(set) var rounds = 0

    init(_ text: String = "") { filter = query(text).filter }

    func offer(_ batch: EncodedBatch) { offer(batch, candidates: Array(0..<batch.entryCount)) }

    func offer(_ batch: EncodedBatch, candidates: [Int]) {
        seen += candidates.filter { index in
            guard let filter else { return true }
            return filter.matches(batch.facts!.facts[index], in: batch.facts!)
        }.count
    }

    func noteLost(_ count: Int, _ reason: LostReason) { lost += count }
    func finish(notice: Notice?) { finishedWith = .some(notice) }
    func deliveryEnded() { rounds += 1 }
}

/// Records what the hub's sinks need, as the fan-out does.
final class DemandLog: SinkDemand {
    var formats: [OutputFormat: Int] = [:]
    var facts: [FactsNeed: Int] = [:]
    func added(_ needs: SinkNeeds) { count(needs, 1) }
    func removed(_ needs: SinkNeeds) { count(needs, -1) }
    private func count(_ needs: SinkNeeds, _ delta: Int) {
        for format in [OutputFormat.json, .text, .als] where needs.formats.contains(format) {
            formats[format, default: 0] += delta
        }
        facts[needs.facts, default: 0] += delta
    }
}

func hub(counters: Counters = Counters(), maxSubscribers: Int = 100, ring: ReplayRing = ReplayRing(capacityEntries: 0, section: OneThread()),
         demand: DemandLog? = nil, pairWindowSeconds: Double = 2) -> TapHub {
    TapHub(limits: TapLimits(maxSubscribers: maxSubscribers, pairWindowNanos: UInt64(pairWindowSeconds * 1e9),
                             pairTableSize: 1_000, pairTableBytes: 1 << 30),
           counters: counters, ring: ring, demand: demand, redecode: { _, _, _ in nil })
}
