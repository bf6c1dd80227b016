import ALSTapALS
import ALSTapSystem

/// Fans decoded batches out to every loop that has subscribers.
///
/// A batch is published by the loop that decoded it and handed to each subscribed loop's
/// inbox (one short lock and at most one eventfd write per batch and loop). Each loop then
/// offers it to its own subscribers. Ingestion never waits: a full inbox drops and counts.
public final class Hub: Sendable {
    let inboxes: [LoopInbox]
    private let subscribersByFormat: [AtomicCounter]
    private let filteredSubscribers = AtomicCounter()
    private let pairingSubscribers = AtomicCounter()
    private let sequence = AtomicCounter()
    let counters: Counters
    let replayRing: ReplayRing

    init(loops: [EventLoop], inboxLimit: Int, inboxBytes: Int = .max, replayEntries: Int, replayBytes: Int = .max,
         counters: Counters) {
        replayRing = ReplayRing(capacityEntries: replayEntries, capacityBytes: replayBytes)
        inboxes = loops.map { LoopInbox(loop: $0, limit: inboxLimit, limitBytes: inboxBytes) }
        subscribersByFormat = OutputFormat.allCases.map { _ in AtomicCounter() }
        self.counters = counters
    }

    /// The formats at least one subscriber reads: the decoder encodes only these.
    var wantedFormats: FormatSet {
        var formats = FormatSet()
        for format in OutputFormat.allCases where subscribersByFormat[format.rawValue].value > 0 {
            formats.insert(FormatSet(format))
        }
        return formats
    }

    /// The per-entry facts the decoder computes: for filters when some subscriber filters, and
    /// the sidecars' connection too when some subscriber pairs.
    var wantedFacts: FactsNeed {
        pairingSubscribers.value > 0 ? .pairing : filteredSubscribers.value > 0 ? .filters : .none
    }

    /// A pairing subscriber needs facts and JSON whatever its own format and filter.
    func subscriberAdded(format: OutputFormat, filtered: Bool, pairs: Bool, loop: Int) {
        subscribersByFormat[format.encoding.rawValue].add(1)
        if filtered || pairs { filteredSubscribers.add(1) }
        if pairs {
            subscribersByFormat[OutputFormat.json.rawValue].add(1)
            pairingSubscribers.add(1)
        }
        inboxes[loop].subscribers.add(1)
        counters.add(.subscribersActive)
    }

    func subscriberRemoved(format: OutputFormat, filtered: Bool, pairs: Bool, loop: Int) {
        subscribersByFormat[format.encoding.rawValue].add(-1)
        if filtered || pairs { filteredSubscribers.add(-1) }
        if pairs {
            subscribersByFormat[OutputFormat.json.rawValue].add(-1)
            pairingSubscribers.add(-1)
        }
        inboxes[loop].subscribers.add(-1)
        counters.subtract(.subscribersActive)
    }

    /// Hands `batch` to every loop with subscribers and keeps `payload` (the message as received)
    /// in the replay ring. `fromLoop` is drained at the end of its current iteration anyway, so
    /// it is not woken.
    func publish(_ batch: EncodedBatch, payload: UnsafeRawBufferPointer, reporter: Reporter, fromLoop: Int) {
        guard batch.entryCount > 0 else { return }
        var batch = batch
        // Numbered and kept in the ring before any loop sees it: a replay then knows exactly
        // which live batches it already covered.
        batch.sequence = UInt64(sequence.addAndGet(1))
        if replayRing.isEnabled {
            replayRing.append(ReplayRing.Record(sequence: batch.sequence, payload: SharedBytes(copying: payload),
                                                reporter: reporter, entries: batch.entryCount))
        }
        for inbox in inboxes where inbox.subscribers.value > 0 {
            switch inbox.push(batch) {
            case .wake where inbox.loop.index != fromLoop: inbox.loop.wake()
            case .dropped: counters.add(.inboxDropped, batch.entryCount)
            default: break
            }
        }
    }
}

/// One loop's incoming batches and tasks from other threads.
final class LoopInbox: Sendable {
    enum PushResult { case wake, queued, dropped }

    private struct Pending {
        var batches: [EncodedBatch] = []
        var entries = 0
        /// Bytes of lines the queued batches hold.
        var bytes = 0
        /// Entries dropped because the inbox was full, not yet reported to subscribers.
        var dropped = 0
        var tasks: [@Sendable () -> Void] = []
    }

    let loop: EventLoop
    let subscribers = AtomicCounter()
    private let limit: Int
    private let limitBytes: Int
    private let pending = Locked(Pending())

    init(loop: EventLoop, limit: Int, limitBytes: Int = .max) {
        self.loop = loop
        self.limit = limit
        self.limitBytes = limitBytes
    }

    /// Bounded in entries and in bytes of lines (a few large entries weigh as much as many small).
    func push(_ batch: EncodedBatch) -> PushResult {
        let bytes = batch.encodedBytes
        return pending.withLock { state in
            if state.entries + batch.entryCount > limit || (state.bytes + bytes > limitBytes && !state.batches.isEmpty) {
                state.dropped += batch.entryCount
                return .dropped
            }
            let wasEmpty = state.batches.isEmpty
            state.batches.append(batch)
            state.entries += batch.entryCount
            state.bytes += bytes
            return wasEmpty ? .wake : .queued
        }
    }

    func push(task: @escaping @Sendable () -> Void) {
        pending.withLock { $0.tasks.append(task) }
    }

    /// Takes everything queued; `dropped` is what overflowed since the last drain.
    func drain() -> (batches: [EncodedBatch], dropped: Int, tasks: [@Sendable () -> Void]) {
        pending.withLock { state in
            defer { state = Pending() }
            return (state.batches, state.dropped, state.tasks)
        }
    }
}
