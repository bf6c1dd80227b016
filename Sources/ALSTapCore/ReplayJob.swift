import ALSTapALS
import ALSTapFilter
import ALSTapFormats
import ALSTapMetrics

/// A `last=K` (or `since=T`) replay, gathered a few messages per loop turn so that opening many taps at once
/// (or opening and resetting them) cannot stall the loop: the ring's messages are decoded again,
/// newest first, until K entries match, and only then queued, oldest first, in front of what
/// arrived live meanwhile. The subscriber's stream writes nothing until then. The batches it
/// holds meanwhile count in the subscribers' byte bound (`Counters.subscriberQueuedBytes`): it
/// stops gathering where the subscriber's queue could take no more (`Subscriber.fits`). Loop-confined.
public final class ReplayJob {
    /// Decodes a ring record again (the ingest protocol that received it knows how) into these
    /// formats with these facts; nil when it no longer decodes.
    public typealias Redecode = (ReplayRing.Record, FormatSet, FactsNeed) -> EncodedBatch?

    public let subscriber: Subscriber
    private let counters: Counters
    private let wanted: Int
    /// Messages received before this (monotonic nanoseconds) are not replayed (`since=T`).
    private let sinceNanos: UInt64
    private static let orderSlackNanos: UInt64 = 1_000_000_000
    /// Bytes of the selected batches, on the subscribers' account until they are queued.
    private var held = 0
    /// The next ring position to read (counting down).
    private var position: Int
    private var found = 0
    /// Matching entries, newest batch first.
    private var selected: [(batch: EncodedBatch, entries: [Int])] = []

    /// nil when the ring is empty (nothing to replay). Live batches up to the ring's newest are
    /// the replay's from here on.
    /// `count`: the most recent matching entries wanted; `sinceNanos`: only messages received
    /// from then on (0: any).
    public init?(subscriber: Subscriber, count: Int, sinceNanos: UInt64 = 0, ring: ReplayRing, counters: Counters) {
        guard let newest = ring.newest() else { return nil }
        self.subscriber = subscriber
        self.counters = counters
        wanted = count
        self.sinceNanos = sinceNanos
        position = newest.position
        subscriber.replayedThrough = newest.sequence
        subscriber.beginReplay()
    }

    deinit { counters.subtract(.subscriberQueuedBytes, held) }  // abandoned: the client left

    private var overBytes: Bool { !subscriber.fits(holding: subscriber.pinnedBytes + held, counted: held) }

    /// Decodes ring messages until `budget` entries were decoded (at least one message); done
    /// when the replay is complete (and queued).
    public func step(ring: ReplayRing, redecode: Redecode, budget: Int) -> (done: Bool, decoded: Int) {
        let records = ring.records(through: position, count: 8)
        var decoded = 0
        var used = 0
        var reachedSince = false
        for record in records where found < wanted && !overBytes && (used == 0 || decoded < budget) {
            // Loops stamp a message before decoding it and append it after, so the ring's
            // order may differ from its receive times by a little: older ones within a second
            // are skipped, not an end.
            guard record.receivedNanos >= sinceNanos else {
                used += 1
                if record.receivedNanos &+ Self.orderSlackNanos < sinceNanos {
                    reachedSince = true
                    break
                }
                continue
            }
            used += 1
            decoded += record.entries
            guard var batch = redecode(record, subscriber.needs.formats, subscriber.filter?.factsNeed ?? .none)
            else { continue }
            batch.receivedNanos = record.receivedNanos
            var matching = (0..<batch.entryCount).filter { index in
                guard let filter = subscriber.filter, let table = batch.facts else { return true }
                return filter.matches(table.facts[index], in: table)
            }
            matching = Array(matching.suffix(wanted - found))
            found += matching.count
            if !matching.isEmpty {
                selected.append((batch, matching))
                let bytes = batch.lines(for: subscriber.format)?.bytes.count ?? 0
                held += bytes
                counters.add(.subscriberQueuedBytes, bytes)
            }
        }
        position -= used
        // Done when enough matched, the ring has nothing older (evicted, or its beginning), the
        // messages got older than `since`, or what it holds reached the byte bounds (the newest
        // entries are kept).
        let done = found >= wanted || records.isEmpty || (used == records.count && records.count < 8) || overBytes
            || reachedSince
        if done {
            counters.subtract(.subscriberQueuedBytes, held)
            held = 0
            // What does not fit the subscriber's bound would be dropped on the way in: let the
            // oldest batches go first, so the newest entries are the ones it gets.
            var bytes = selected.reduce(0) { $0 + ($1.batch.lines(for: subscriber.format)?.bytes.count ?? 0) }
            while selected.count > 1 && bytes > subscriber.capacityBytes, let oldest = selected.popLast() {
                bytes -= oldest.batch.lines(for: subscriber.format)?.bytes.count ?? 0
            }
            subscriber.completeReplay(selected.reversed(), notice: subscriber.format == .als ? .replayed : nil)
            selected.removeAll()
        }
        return (done, decoded)
    }
}
