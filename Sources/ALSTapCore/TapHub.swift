import ALSTapALS
import ALSTapFormats
import ALSTapMetrics

/// The bounds a hub applies to its sinks and its pairer.
public struct TapLimits: Sendable {
    /// Taps open at once, process-wide (`Counters.subscribersActive`); more are refused.
    public var maxSubscribers: Int
    public var pairWindowNanos: UInt64
    /// Requests waiting for their twin in this hub's pairer, and the bytes they keep alive.
    public var pairTableSize: Int
    public var pairTableBytes: Int

    public init(maxSubscribers: Int, pairWindowNanos: UInt64, pairTableSize: Int, pairTableBytes: Int) {
        self.maxSubscribers = maxSubscribers
        self.pairWindowNanos = pairWindowNanos
        self.pairTableSize = pairTableSize
        self.pairTableBytes = pairTableBytes
    }
}

/// Told what the sinks need as they come and go (the fan-out across loops, so that the decoder
/// encodes only what someone reads).
public protocol SinkDemand: AnyObject {
    func added(_ needs: SinkNeeds)
    func removed(_ needs: SinkNeeds)
}

/// One event loop's taps: admits sinks, offers them every live batch (through the subscriber
/// index where a filter allows), runs the pairer while some sink pairs, gathers `last=K`
/// replays a bounded amount per turn, and ends every sink on shutdown. No I/O: batches, time
/// and turns come from the caller, and subscribers' transports pull what was queued.
public final class TapHub {
    private let limits: TapLimits
    private let counters: Counters
    private let ring: ReplayRing
    private let redecode: ReplayJob.Redecode
    /// Held strongly: without it the decoder would encode nothing for these sinks.
    private let demand: (any SinkDemand)?
    /// Each sink with what it needed when it came (counted out the same at `remove`).
    private var sinks: [ObjectIdentifier: (sink: any TapSink, needs: SinkNeeds)] = [:]
    /// Sinks with a namespace- or workload-pinning filter, found per entry (the rest see every entry).
    private let index = SubscriberIndex()
    private var unindexed: [ObjectIdentifier: any TapSink] = [:]
    /// Joins both sidecars' entries while some sink pairs.
    private var pairer: Pairer?
    private var pairingSinks = 0
    /// `last=K` replays being gathered, by subscriber.
    private var replays: [ObjectIdentifier: ReplayJob] = [:]
    /// Shutting down: nothing new is admitted.
    public private(set) var draining = false

    /// Entries decoded again per turn for replays, all of them together (and per replay and
    /// turn), and at most 2 ms of it: a few milliseconds of work however many replays wait,
    /// however slow the build (sanitizers) or the machine's phase.
    public static let replayEntriesPerTurn = 2_000
    static let replayEntriesPerStep = 500
    static let replayNanosPerTurn: UInt64 = 2_000_000

    public init(limits: TapLimits, counters: Counters, ring: ReplayRing, demand: (any SinkDemand)?,
                redecode: @escaping ReplayJob.Redecode) {
        self.limits = limits
        self.counters = counters
        self.ring = ring
        self.demand = demand
        self.redecode = redecode
    }

    public var sinkCount: Int { sinks.count }
    public var hasReplays: Bool { !replays.isEmpty }
    public var isPairing: Bool { pairer != nil }

    /// Whether one more tap may open (not draining, under the limit); a refusal is counted.
    public func mayOpen() -> Bool {
        guard !draining, counters.get(.subscribersActive) < limits.maxSubscribers else {
            counters.add(.subscribersRejected)
            return false
        }
        return true
    }

    /// Registers `sink` unless the limit is reached (false, counted).
    public func add(_ sink: any TapSink) -> Bool {
        guard mayOpen() else { return false }
        let id = ObjectIdentifier(sink)
        let needs = sink.needs
        sinks[id] = (sink, needs)
        if SubscriberIndex.accepts(sink) {
            index.add(sink)
        } else {
            unindexed[id] = sink
        }
        counters.add(.subscribersActive)
        demand?.added(needs)
        if sink.pairs {
            pairingSinks += 1
            if pairer == nil {
                pairer = Pairer(windowNanos: limits.pairWindowNanos, capacity: limits.pairTableSize,
                                capacityBytes: limits.pairTableBytes, counters: counters)
            }
        }
        return true
    }

    /// Registers a tap subscriber, replays the `last` most recent matching entries into it (with
    /// `sinceNanos`, those received from then on: all of them when `last` is 0), and with
    /// `follow` false ends it after them. False when refused.
    public func open(_ subscriber: Subscriber, last: Int, sinceNanos: UInt64? = nil, follow: Bool) -> Bool {
        guard add(subscriber) else { return false }
        // Registered first, so no live batch published from now on is missed; the ring's
        // sequence numbers tell which of those the replay covers. The replay itself is gathered
        // over the next turns (`stepReplays`).
        let count = sinceNanos != nil && last == 0 ? Int.max : last
        if count > 0 && !subscriber.pairs {
            if let job = ReplayJob(subscriber: subscriber, count: count, sinceNanos: sinceNanos ?? 0, ring: ring,
                                   counters: counters) {
                replays[ObjectIdentifier(subscriber)] = job
            } else if subscriber.format == .als {
                // A cluster tap reading this replica needs to know where history ends and live begins.
                subscriber.enqueueNotice(.replayed)
            }
        }
        if !follow { subscriber.finish(notice: nil) }
        return true
    }

    /// The newest kept messages holding at most `maxEntries` entries, decoded again with `facts`
    /// (oldest first, each with its sequence and receive time), and whether they are all that
    /// was ever received: history for a new aggregate. Call after `add`, so that live batches
    /// past the newest of them are not missed (the caller skips the ones it got here).
    public func history(maxEntries: Int, facts: FactsNeed) -> (batches: [(batch: EncodedBatch, receivedNanos: UInt64)], complete: Bool) {
        let (records, complete) = ring.newest(entries: maxEntries)
        var batches: [(batch: EncodedBatch, receivedNanos: UInt64)] = []
        for record in records {
            guard var batch = redecode(record, [], facts) else { continue }
            batch.sequence = record.sequence
            batches.append((batch, record.receivedNanos))
        }
        counters.add(.replayEntriesDecoded, batches.reduce(0) { $0 + $1.batch.entryCount })
        return (batches, complete)
    }

    /// Takes a sink out (its client left); a replay still gathering for it is abandoned.
    public func remove(_ sink: any TapSink) {
        let id = ObjectIdentifier(sink)
        guard let (_, needs) = sinks.removeValue(forKey: id) else { return }
        replays[id] = nil
        if unindexed.removeValue(forKey: id) == nil { index.remove(sink) }
        counters.subtract(.subscribersActive)
        demand?.removed(needs)
        if sink.pairs {
            pairingSinks -= 1
            if pairingSinks == 0 { pairer = nil }
        }
    }

    /// Offers live batches (and the pair records they complete) to the sinks; `dropped` entries
    /// never arrived (the hand-off was full) and every sink is told.
    public func deliver(_ batches: [EncodedBatch], dropped: Int, now: UInt64) {
        guard !batches.isEmpty || dropped > 0 else { return }
        // Pair records are cut from whole lines (not those written for masked subscribers only).
        let pairs = pairer.map { pairer in batches.compactMap { $0.json?.kept.isAll == false ? nil : pairer.add($0, now: now) } } ?? []
        if dropped > 0 { for (sink, _) in sinks.values { sink.noteLost(dropped, .slow) } }
        // Batch by batch, every sink in turn: sinks that mask fields share each batch's projection.
        for batch in batches {
            for sink in unindexed.values where !sink.pairs { sink.offer(batch) }
        }
        for record in pairs {
            for sink in unindexed.values where sink.pairs { sink.offer(record) }
        }
        if !index.isEmpty { for batch in batches { index.dispatch(batch) } }
        for (sink, _) in sinks.values { sink.deliveryEnded() }
    }

    /// Hands records whose pairing window ended to the pairing sinks.
    public func expirePairs(now: UInt64) {
        guard let records = pairer?.expire(now: now) else { return }
        for (sink, _) in sinks.values where sink.pairs {
            sink.offer(records)
            sink.deliveryEnded()
        }
    }

    /// Advances the replays a bounded amount (`clock` measures the turn's time); true while
    /// some are left (the caller comes back on its next turn).
    public func stepReplays(clock: () -> UInt64) -> Bool {
        guard !replays.isEmpty else { return false }
        var budget = Self.replayEntriesPerTurn
        var done: [ObjectIdentifier] = []
        let start = clock()
        for (id, job) in replays where budget > 0 && clock() &- start < Self.replayNanosPerTurn {
            let step = job.step(ring: ring, redecode: redecode, budget: min(budget, Self.replayEntriesPerStep))
            budget -= max(step.decoded, 1)
            counters.add(.replayEntriesDecoded, step.decoded)
            if step.done { done.append(id) }
        }
        for id in done { replays[id] = nil }
        return !replays.isEmpty
    }

    /// Shutdown, step 1: nothing new is admitted (the sinks go on: entries still arrive while
    /// the ingest streams end).
    public func beginShutdown() {
        draining = true
    }

    /// Shutdown, step 2: every sink ends after a last notice.
    public func finishAll() {
        for (sink, _) in sinks.values { sink.finish(notice: .shutdown) }
    }
}
