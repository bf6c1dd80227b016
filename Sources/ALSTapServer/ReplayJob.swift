import ALSTapALS

/// A `last=K` replay, gathered a few messages per loop turn so that opening many taps at once
/// (or opening and resetting them) cannot stall the loop: the ring's messages are decoded again,
/// newest first, until K entries match, and only then queued, oldest first, in front of what
/// arrived live meanwhile. The subscriber's stream writes nothing until then. Loop-confined.
final class ReplayJob {
    let subscriber: Subscriber
    private let wanted: Int
    /// The next ring position to read (counting down).
    private var position: Int
    private var found = 0
    /// Matching entries, newest batch first.
    private var selected: [(batch: EncodedBatch, entries: [Int])] = []

    /// nil when the ring is empty (nothing to replay). Live batches up to the ring's newest are
    /// the replay's from here on.
    init?(subscriber: Subscriber, count: Int, ring: ReplayRing) {
        guard let newest = ring.newest() else { return nil }
        self.subscriber = subscriber
        wanted = count
        position = newest.position
        subscriber.replayedThrough = newest.sequence
        subscriber.beginReplay()
    }

    /// Decodes up to `budget` messages; true when the replay is complete (and queued).
    func step(ring: ReplayRing, decoder: ALSDecoder, budget: Int) -> (done: Bool, decoded: Int) {
        let records = ring.records(through: position, count: budget)
        position -= records.count
        for record in records where found < wanted {
            var reporter = record.reporter
            guard let batch = try? decoder.decode(record.payload.bytes, reporter: &reporter,
                                                  formats: FormatSet(subscriber.format),
                                                  facts: subscriber.filter != nil ? .filters : .none, decodedAtNanos: 0)
            else { continue }
            var matching = (0..<batch.entryCount).filter { index in
                guard let filter = subscriber.filter, let table = batch.facts else { return true }
                return filter.matches(table.facts[index], in: table)
            }
            matching = Array(matching.suffix(wanted - found))
            found += matching.count
            if !matching.isEmpty { selected.append((batch, matching)) }
        }
        // Done when enough matched, or the ring has nothing older (evicted, or its beginning).
        let done = found >= wanted || records.count < budget
        if done {
            let notice = subscriber.format == .als
                ? subscriber.notice("replayed", json: ClusterTap.replayedNotice, text: "") : nil
            subscriber.completeReplay(selected.reversed(), notice: notice)
            selected.removeAll()
        }
        return (done, records.count)
    }
}
