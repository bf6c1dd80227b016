import ALSTapALS
import ALSTapCore
import ALSTapFilter
import ALSTapFormats
import ALSTapMetrics

/// The bounds of a `/top` aggregate.
public struct TopLimits: Sendable {
    /// Groups per aggregate; beyond, entries go to the `other` row.
    public var maxGroups: Int
    /// Bytes all aggregates together hold; beyond, too.
    public var budget: TopBudget

    public init(maxGroups: Int, budget: TopBudget) {
        self.maxGroups = maxGroups
        self.budget = budget
    }
}

/// A `/top` subscriber: a sink that adds every matching entry to its `TopWindow` as it arrives,
/// and every `interval` writes a snapshot into `output` (the queue its transport pulls, as a
/// `/tap` subscriber's). Loop-confined; no clock of its own.
public final class TopSink: TapSink {
    public let query: TopQuery
    public let output: Subscriber
    public let window: TopWindow
    private let counters: Counters
    /// Monotonic nanoseconds: entries count at the time they are offered.
    private let clock: () -> UInt64
    private var nextSnapshotNanos: UInt64
    private var lost = 0
    public private(set) var finished = false
    /// Live batches up to this sequence were counted from history already.
    private var seededThrough: UInt64 = 0
    /// Most entries of history a new aggregate decodes (at once, on its loop: a few milliseconds).
    public static let historyEntries = 500

    public init(query: TopQuery, output: Subscriber, limits: TopLimits, counters: Counters,
                clock: @escaping () -> UInt64) {
        let now = clock()
        self.clock = clock
        self.query = query
        self.output = output
        self.counters = counters
        window = TopWindow(grouping: query.by, windowSeconds: query.windowSeconds, maxGroups: limits.maxGroups,
                           budget: limits.budget, now: now)
        nextSnapshotNanos = now + query.intervalMillis * 1_000_000
    }

    public var filter: TapFilter? { query.tap.filter }
    public var pairs: Bool { query.tap.pair }
    public var needs: SinkNeeds {
        // Without a filter, only what the window reads (no pods, scheme or request ids).
        SinkNeeds(formats: pairs ? .json : [],
                  facts: pairs ? FactsNeed([.links, .measures]).union(filter?.factsNeed ?? .filters)
                      : filter.map { $0.factsNeed.union(.measures) } ?? .measures)
    }

    /// Counts in history (oldest first, from `TapHub.history`): the entries received within the
    /// window, each at its receive time. `complete`: that history is all there ever was, since
    /// `serverStartedNanos`; otherwise the numbers cover from its oldest message on.
    public func seed(_ history: [(batch: EncodedBatch, receivedNanos: UInt64)], complete: Bool, serverStartedNanos: UInt64) {
        let now = clock()
        let windowNanos = UInt64(query.windowSeconds) * 1_000_000_000
        let matcher = filter?.matcher
        for (batch, received) in history {
            seededThrough = max(seededThrough, batch.sequence)
            guard let table = batch.facts, table.holds(filter?.factsNeed ?? .none), received <= now,
                  now - received < windowNanos else { continue }
            for i in 0..<batch.entryCount where matcher?.matches(record: i, in: table) ?? true {
                window.add(record: i, of: table, now: received)
            }
        }
        if complete {
            window.coverFrom(serverStartedNanos)
        } else if let oldest = history.first {
            window.coverFrom(oldest.receivedNanos)
        }
    }

    /// Live, unless history counted it already (pair records are unnumbered: always live).
    private func isLive(_ batch: EncodedBatch) -> Bool {
        !finished && (batch.sequence == 0 || batch.sequence > seededThrough)
    }

    public func offer(_ batch: EncodedBatch) {
        guard let table = batch.facts else { return }
        count(batch, records: 0..<(table.facts.count / table.stride))
    }

    public func offer(_ batch: EncodedBatch, candidates: [Int]) {
        count(batch, records: candidates)
    }

    /// Counts the records of a live batch that pass the filter, at the time they are offered.
    private func count<Records: Sequence<Int>>(_ batch: EncodedBatch, records: Records) {
        guard let table = batch.facts, table.holds(filter?.factsNeed ?? .none), isLive(batch) else { return }
        let matcher = filter?.matcher
        let before = window.overflowEntries
        let now = clock()
        for i in records where matcher?.matches(record: i, in: table) ?? true {
            window.add(record: i, of: table, now: now)
        }
        counters.add(.topOverflow, window.overflowEntries - before)
    }

    public func noteLost(_ count: Int, _ reason: LostReason) { lost += count }

    public func finish(notice: Notice?) {
        finished = true
        output.finish(notice: notice)
    }

    public func deliveryEnded() {}

    /// Writes a snapshot when one is due (skipped while the client has not read the last one:
    /// only the newest matters). True when the output has news for its transport.
    public func tick(now: UInt64, wallMicros: Int64) -> Bool {
        guard !finished, !output.isFinishing, now >= nextSnapshotNanos else { return false }
        nextSnapshotNanos = now + query.intervalMillis * 1_000_000
        if output.hasData {
            counters.add(.topSnapshotsSkipped)
            return true
        }
        let snapshot = window.snapshot(now: now, wallMicros: wallMicros, limit: query.limit, lostEntries: lost)
        output.enqueue(snapshot.encoded(as: output.format))
        if !query.follow { finish(notice: nil) }
        return true
    }
}
