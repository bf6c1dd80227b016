import ALSTapALS
import ALSTapCore
import ALSTapMetrics
import ALSTapSystem

/// Fans decoded batches out to every loop that has sinks, and keeps the replay ring.
///
/// A batch is published by the loop that decoded it and handed to each subscribed loop's
/// inbox (one short lock and at most one eventfd write per batch and loop). Each loop then
/// offers it to its own subscribers. Ingestion never waits: a full inbox drops and counts.
final class Fanout: Sendable {
    let inboxes: [LoopInbox]
    private let subscribersByFormat: [AtomicCounter]
    private let filteredSubscribers = AtomicCounter()
    private let pairingSubscribers = AtomicCounter()
    private let aggregatingSubscribers = AtomicCounter()
    private let detailedSubscribers = AtomicCounter()
    private let maskedSubscribers = AtomicCounter()
    /// Sinks that read whole JSON lines (all but the masked subscribers), and the masked ones'
    /// top-level members (how many sinks want each set): what `wantedJSONMembers` follows.
    private let jsonDemand = Locked((whole: 0, masked: [UInt64: Int]()))
    /// `JSONMembers.bits` of the lines the decoder writes, as an Int's bit pattern.
    private let jsonMembers = AtomicCounter()
    private let sequence = AtomicCounter()
    let counters: Counters
    let replayRing: ReplayRing
    /// When the server began (monotonic): a `/top` aggregate's history reaches back at most to it.
    let startedNanos = monotonicNanos()

    init(loops: [EventLoop], inboxLimit: Int, inboxBytes: Int = .max, replayEntries: Int, replayBytes: Int = .max,
         counters: Counters) {
        replayRing = ReplayRing(capacityEntries: replayEntries, capacityBytes: replayBytes, section: PthreadSection())
        inboxes = loops.map { LoopInbox(loop: $0, limit: inboxLimit, limitBytes: inboxBytes) }
        subscribersByFormat = OutputFormat.allCases.map { _ in AtomicCounter() }
        jsonMembers.add(Int(bitPattern: UInt(JSONMembers.all.bits)))
        self.counters = counters
    }

    /// The formats at least one subscriber reads: the decoder encodes only these (JSON with its
    /// members' offsets while some subscriber masks fields).
    var wantedFormats: FormatSet {
        var formats = FormatSet()
        for format in OutputFormat.allCases where subscribersByFormat[format.rawValue].value > 0 {
            formats.insert(FormatSet(format))
        }
        if maskedSubscribers.value > 0 { formats.insert(.memberIndex) }
        return formats
    }

    /// The per-entry facts the decoder computes: for filters when some subscriber filters, the
    /// sidecars' connection too when some subscriber pairs, the measures when some aggregates,
    /// headers and labels when some filter reads them.
    var wantedFacts: FactsNeed {
        var need = FactsNeed.none
        if filteredSubscribers.value > 0 { need.insert(.filters) }
        if pairingSubscribers.value > 0 { need.insert(.links) }
        if aggregatingSubscribers.value > 0 { need.insert(.measures) }
        if detailedSubscribers.value > 0 { need.insert(.details) }
        return need
    }

    /// The top-level members of the JSON lines the decoder writes: all of them while any sink reads
    /// whole lines, else those the masked subscribers' masks keep (a masked firehose then costs
    /// the server less than a full one).
    var wantedJSONMembers: JSONMembers { JSONMembers(bits: UInt64(UInt(bitPattern: jsonMembers.value))) }

    /// A sink of `loop` came (`by` 1) or went (-1): what the decoder encodes follows.
    func count(_ needs: SinkNeeds, loop: Int, by delta: Int) {
        if needs.formats.contains(.json) {
            jsonDemand.withLock { demand in
                if needs.formats.contains(.memberIndex) {
                    demand.masked[needs.jsonMembers.bits, default: 0] += delta
                    if demand.masked[needs.jsonMembers.bits] == 0 { demand.masked[needs.jsonMembers.bits] = nil }
                } else {
                    demand.whole += delta
                }
                let wanted = demand.whole > 0 || demand.masked.isEmpty ? JSONMembers.all.bits : demand.masked.keys.reduce(0, |)
                // The only writer, under the lock: the difference makes it `wanted`.
                jsonMembers.add(Int(bitPattern: UInt(wanted)) &- jsonMembers.value)
            }
        }
        for format in [OutputFormat.json, .text, .als] where needs.formats.contains(format) {
            subscribersByFormat[format.rawValue].add(delta)
        }
        if needs.facts.contains(.filters) { filteredSubscribers.add(delta) }
        if needs.facts.contains(.links) { pairingSubscribers.add(delta) }
        if needs.facts.contains(.measures) { aggregatingSubscribers.add(delta) }
        if needs.facts.contains(.details) { detailedSubscribers.add(delta) }
        if needs.formats.contains(.memberIndex) { maskedSubscribers.add(delta) }
        inboxes[loop].subscribers.add(delta)
    }

    /// Set by `Server.announceDrain`: `/readyz` fails from then on (before the drain itself).
    let drainAnnounced = AtomicCounter()

    /// Wakes every loop (each then runs the end of its iteration: its inbox, shutdown steps).
    func wakeAll() {
        for inbox in inboxes { inbox.loop.wake() }
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
                                                reporter: reporter, entries: batch.entryCount,
                                                receivedNanos: batch.decodedAtNanos))
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


/// One loop's share of the fan-out's demand: what its hub's sinks need.
final class LoopDemand: SinkDemand {
    private let fanout: Fanout
    private let loop: Int

    init(fanout: Fanout, loop: Int) {
        self.fanout = fanout
        self.loop = loop
    }

    func added(_ needs: SinkNeeds) { fanout.count(needs, loop: loop, by: 1) }
    func removed(_ needs: SinkNeeds) { fanout.count(needs, loop: loop, by: -1) }
}

/// The replay ring's exclusion across loops: a pthread mutex. (Not a `Locked<()>`: ThreadSanitizer
/// reported the zero-sized value's inout accesses as a race.)
struct PthreadSection: CriticalSection {
    private let mutex = PthreadMutex()

    func run<Result>(_ body: () -> Result) -> Result { mutex.withLock(body) }
}
