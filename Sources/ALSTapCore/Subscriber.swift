import ALSTapALS
import ALSTapFilter
import ALSTapFormats
import ALSTapMetrics
import DequeModule

/// Where a subscriber's bytes go (an HTTP/1.1 chunked response or an HTTP/2 stream).
public protocol SubscriberTransport: AnyObject {
    /// New lines were queued (or the stream should end); write them when the socket allows.
    func subscriberHasData()
}

/// One tap client: a bounded queue of shared, already-encoded lines.
///
/// The transport pulls its bytes (`forEachQueuedSlice`, `consume`) and ends the stream once
/// `isFinished`, the way nghttp2's `mem_send` is pulled; no I/O and no clock here (`clock` is
/// injected). Loop-confined: created, fed and drained only on the loop that owns its connection.
/// A full queue drops new batches for this subscriber alone and counts them; once the queue
/// has drained, a `lost` line per reason tells the client how many it missed.
public final class Subscriber: TapSink {
    public let format: OutputFormat
    /// nil: every entry.
    public let filter: TapFilter?
    public let capacityLines: Int
    /// Bytes of shared batches this queue may pin, and all subscribers' queues together
    /// (`Counters.subscriberQueuedBytes`).
    public let capacityBytes: Int
    public let totalCapacityBytes: Int
    /// `pair=1`: this subscriber gets the pairer's records instead of single entries.
    public let pairs: Bool
    /// `fields=`: its JSON lines keep only these fields, projected by `maskedLines`.
    public let fields: FieldMask?
    private let maskedLines: MaskedLines?
    private let counters: Counters
    /// Monotonic nanoseconds (the rate limit, delivery latency).
    private let clock: () -> UInt64
    private var rateLimit: RateLimit?
    /// Live batches up to this sequence were already sent by a replay.
    public internal(set) var replayedThrough: UInt64 = 0
    public weak var transport: (any SubscriberTransport)?

    @usableFromInline struct Item {
        @usableFromInline let bytes: SharedBytes
        @usableFromInline let range: Range<Int>
        let lines: Int
        /// When the batch was decoded (0 for notices and replays).
        let decodedAtNanos: UInt64
        /// The bytes this item holds in memory on the queue's account: the whole shared buffer
        /// for the first queued item of a buffer, 0 for the ones after it (the first passes its
        /// share on to the next when it leaves).
        var pinned = 0
    }

    /// The buffer the newest charge is for: items of it that follow are not charged again.
    private var lastCharged: SharedBytes?
    /// How far ahead a leaving item looks for the next item of its buffer (SSE puts two framing
    /// items between a buffer's lines, `format=als` one header).
    private static let chargeLookahead = 4

    /// Written items leave at once, releasing their share of the batch.
    @usableFromInline var items = Deque<Item>()
    /// Bytes of `items.first` already written.
    @usableFromInline var headOffset = 0
    public private(set) var queuedLines = 0
    /// What `items` pin, in bytes (whole shared buffers, each once).
    public private(set) var pinnedBytes = 0
    private var lost: [LostReason: Int] = [:]
    /// A `last=K` replay is being gathered: nothing is written until it is in front of the queue.
    public private(set) var replayPending = false
    /// Set on shutdown (or after a replay without follow): once the queue is written, the stream ends.
    public private(set) var isFinishing = false

    /// `format=capture`: a receive time (monotonic nanoseconds) as wall-clock µs, for each record.
    public var wallMicros: ((UInt64) -> Int64)?

    /// `fields` and `maskedLines` come together (the loop's shared projections).
    public init(format: OutputFormat, filter: TapFilter?, maxEntriesPerSecond: Double = 0, pairs: Bool = false,
                fields: (mask: FieldMask, lines: MaskedLines)? = nil,
                capacityLines: Int, capacityBytes: Int = .max, totalCapacityBytes: Int = .max, counters: Counters,
                clock: @escaping () -> UInt64) {
        self.clock = clock
        self.fields = fields?.mask
        maskedLines = fields?.lines
        self.format = format
        self.filter = filter
        self.pairs = pairs
        self.capacityLines = capacityLines
        self.capacityBytes = capacityBytes
        self.totalCapacityBytes = totalCapacityBytes
        self.counters = counters
        if maxEntriesPerSecond > 0 { rateLimit = RateLimit(perSecond: maxEntriesPerSecond, now: clock()) }
        if format == .capture { enqueue(CaptureFile.header) }
    }

    deinit { release() }

    /// Lets go of everything queued (the client left): its bytes leave the global account now.
    public func release() {
        counters.subtract(.subscriberQueuedBytes, pinnedBytes)
        pinnedBytes = 0
        lastCharged = nil
        items.removeAll()
        queuedLines = 0
        headOffset = 0
    }

    public var hasData: Bool { !replayPending && !items.isEmpty }

    public var needs: SinkNeeds {
        // A masked subscriber's lines come with their members' offsets (pair records have none).
        pairs ? SinkNeeds(formats: [FormatSet(format), .json], facts: FactsNeed.pairing.union(filter?.factsNeed ?? .none))
            : SinkNeeds(formats: FormatSet(format).union(fields == nil ? [] : .memberIndex), facts: filter?.factsNeed ?? .none,
                        jsonMembers: fields?.topLevel ?? .all)
    }

    public func deliveryEnded() {
        if hasData { transport?.subscriberHasData() }
    }

    /// Live batches from now on queue behind a replay still being gathered.
    func beginReplay() { replayPending = true }

    /// Puts the replayed entries (oldest first) and `notice` in front of what arrived live
    /// meanwhile; writing starts.
    func completeReplay(_ selected: [(batch: EncodedBatch, entries: [Int])], notice: Notice?) {
        var live = items
        items.removeAll()
        // A capture's file header stays first.
        if format == .capture, live.first?.bytes === CaptureFile.header { items.append(live.removeFirst()) }
        for (batch, entries) in selected {
            for index in entries { offer(batch, entries: index..<(index + 1), decodedAt: 0) }
        }
        if let notice { enqueueNotice(notice) }
        items.append(contentsOf: live)
        if let newest = live.last { lastCharged = newest.bytes }
        replayPending = false
        transport?.subscriberHasData()
    }

    /// Queues the lines of a live batch's entries that pass the filter and the rate limit; drops
    /// them all if they do not fit the queue.
    public func offer(_ batch: EncodedBatch) {
        guard isLive(batch) else { return }
        offer(batch, entries: 0..<batch.entryCount, decodedAt: batch.decodedAtNanos)
    }

    /// Like `offer(_:)` for the entries the subscriber index found this subscriber may want
    /// (ascending); the filter still decides.
    public func offer(_ batch: EncodedBatch, candidates: [Int]) {
        guard isLive(batch) else { return }
        offer(batch, entries: candidates, decodedAt: batch.decodedAtNanos)
    }

    /// Numbered live batches the replay already covered are skipped (pair records are unnumbered).
    private func isLive(_ batch: EncodedBatch) -> Bool {
        !isFinishing && (batch.sequence == 0 || batch.sequence > replayedThrough)
    }

    /// Inside `offer`: lost notices wait for its end (after the `format=als` framing).
    private var offering = false

    /// Queues entries of `batch` (all of them, a replay's selection, or the index's candidates,
    /// ascending) that pass the filter and the rate limit, as slices of its shared bytes.
    public func offer<Entries: Sequence<Int>>(_ batch: EncodedBatch, entries: Entries, decodedAt: UInt64) {
        guard let full = batch.lines(for: format) else { return }
        // Lines written for masked subscribers only, decoded while this one was being counted: not
        // its. After a `last=K` replay they are a gap, and it is told.
        guard full.kept.isAll || fields.map({ full.kept.covers($0.topLevel) }) == true else {
            if replayedThrough > 0 && batch.sequence > replayedThrough { noteLost(batch.entryCount, .slow) }
            return
        }
        // Masked lines are projected only once an entry is to be written.
        var masked: EncodedLines?
        func lines() -> EncodedLines {
            guard let fields, let maskedLines else { return full }
            if masked == nil { masked = maskedLines.lines(full, fields) }
            return masked!
        }
        let mark = items.count
        offering = true
        defer {
            offering = false
            if format.encoding == .als { frameALS(since: mark, batch) }
            // Nothing queued to carry the news: tell now rather than with some later entry
            // (after the framing: a notice inside an entries message would corrupt it).
            if items.isEmpty && !lost.isEmpty { enqueueLostNotices() }
        }
        if filter == nil && rateLimit == nil, let range = entries as? Range<Int> {
            if !range.isEmpty { enqueue(lines(), entries: range, decodedAt: decodedAt) }
            return
        }
        let matcher = filter?.matcher
        let table = batch.facts
        // Facts without what the filter reads (decoded before it was counted): nothing to test.
        guard matcher == nil || table?.holds(filter!.factsNeed) == true else { return }
        rateLimit?.refill(now: clock())
        let linesBefore = queuedLines
        // Consecutive kept entries become one slice of the shared bytes.
        var run = 0..<0
        var rateLimited = 0
        for index in entries {
            if let matcher, !matcher.matches(record: index, in: table!) { continue }
            if rateLimit != nil, !rateLimit!.take() {
                rateLimited += 1
                continue
            }
            if !run.isEmpty && index == run.upperBound {
                run = run.lowerBound..<(index + 1)
            } else {
                if !run.isEmpty { append(lines(), entries: run, decodedAt: decodedAt) }
                run = index..<(index + 1)
            }
        }
        if !run.isEmpty { append(lines(), entries: run, decodedAt: decodedAt) }
        if rateLimited > 0 { noteLost(rateLimited, .rate) }
        let overBytes = !fits(holding: pinnedBytes)
        if queuedLines > capacityLines || (overBytes && items.count > mark) {
            let matched = queuedLines - linesBefore
            dropTail(to: mark)
            queuedLines = linesBefore
            noteLost(matched, .slow)
            if overBytes { counters.add(.linesDroppedBytes, matched) }
        }
    }

    /// `format=als`: the entries queued since `mark` become one message, behind a header that
    /// names their reporter (a capture's also holds the receive time).
    private func frameALS(since mark: Int, _ batch: EncodedBatch) {
        guard items.count > mark else { return }
        let entryBytes = items[mark...].reduce(0) { $0 + $1.range.count }
        let received = format == .capture ? wallMicros?(batch.receivedNanos) ?? 0 : nil
        let header = ReplicaFrames.header(identifier: batch.identifier, isTCP: batch.isTCP, entryBytes: entryBytes,
                                          receivedMicros: received)
        // The header is a buffer of its own: it pins its own bytes.
        pinnedBytes += header.count
        counters.add(.subscriberQueuedBytes, header.count)
        items.insert(Item(bytes: header, range: 0..<header.count, lines: 0, decodedAtNanos: 0, pinned: header.count),
                     at: mark)
    }

    private func enqueue(_ lines: EncodedLines, entries: Range<Int>, decodedAt: UInt64) {
        let charge = lastCharged === lines.bytes ? 0 : lines.bytes.count
        if queuedLines + entries.count > capacityLines || !bytesFit(charge) {
            noteLost(entries.count, .slow)
            if queuedLines + entries.count <= capacityLines { counters.add(.linesDroppedBytes, entries.count) }
            return
        }
        append(lines, entries: entries, decodedAt: decodedAt)
    }

    /// True when `charge` more bytes stay within this queue's and the process's bounds.
    private func bytesFit(_ charge: Int) -> Bool {
        charge == 0 || fits(holding: pinnedBytes + charge)
    }

    /// Whether a queue may hold `bytes`: within its own bound, and within the process's total, or
    /// else within its fair share of the total (the total over the subscribers): readers that keep
    /// up hold little, so the stuck ones cannot starve them. The total may thus reach twice its
    /// bound at most (every queue at its share, on top of what the stuck ones took first).
    /// `counted`: the part of `bytes` beyond `pinnedBytes` that is already in the process's total.
    func fits(holding bytes: Int, counted: Int = 0) -> Bool {
        guard bytes <= capacityBytes else { return false }
        if counters.get(.subscriberQueuedBytes) - pinnedBytes - counted + bytes <= totalCapacityBytes { return true }
        return bytes <= totalCapacityBytes / max(1, counters.get(.subscribersActive))
    }

    /// Appends an item, charging its buffer unless an item before it already holds it.
    /// `framing`: a static buffer (SSE's `data: `), never charged.
    private func push(_ item: Item, framing: Bool = false) {
        var item = item
        if !framing && item.bytes !== lastCharged {
            item.pinned = item.bytes.count
            pinnedBytes += item.pinned
            counters.add(.subscriberQueuedBytes, item.pinned)
            lastCharged = item.bytes
        }
        items.append(item)
    }

    /// An item leaves the queue: its charge passes to the next item of the same buffer, or
    /// the buffer leaves the account.
    private func uncharge(_ item: Item, next: Int) {
        guard item.pinned > 0 else { return }
        var i = next
        while i < min(items.count, next + Self.chargeLookahead) {
            if items[i].bytes === item.bytes && items[i].pinned == 0 {
                items[i].pinned = item.pinned
                return
            }
            i += 1
        }
        pinnedBytes -= item.pinned
        counters.subtract(.subscriberQueuedBytes, item.pinned)
        if lastCharged === item.bytes { lastCharged = nil }
    }

    /// Removes items from the back (a batch that did not fit), with their charges.
    private func dropTail(to count: Int) {
        while items.count > count, let item = items.popLast() { uncharge(item, next: items.count) }
    }

    private func append(_ lines: EncodedLines, entries: Range<Int>, decodedAt: UInt64) {
        queuedLines += entries.count
        guard format == .sse else {
            push(Item(bytes: lines.bytes, range: lines.range(entries), lines: entries.count, decodedAtNanos: decodedAt))
            return
        }
        // One event per entry: `data: ` + the JSON line (ending in a newline) + the blank line.
        for entry in entries {
            push(Item(bytes: SSE.eventStart, range: 0..<SSE.eventStart.count, lines: 0, decodedAtNanos: 0), framing: true)
            push(Item(bytes: lines.bytes, range: lines.range(entry..<(entry + 1)), lines: 1, decodedAtNanos: decodedAt))
            push(Item(bytes: SSE.eventEnd, range: 0..<SSE.eventEnd.count, lines: 0, decodedAtNanos: 0), framing: true)
        }
    }

    /// Ends the stream once everything queued is written, after `notice` if there is one.
    public func finish(notice: Notice?) {
        guard !isFinishing else { return }
        if let notice { enqueueNotice(notice) }
        isFinishing = true
        transport?.subscriberHasData()
    }

    /// True when the stream should end now: finishing and nothing left to write.
    public var isFinished: Bool { isFinishing && items.isEmpty && !replayPending }

    /// Entries this subscriber missed, and why: said once the queue has drained (at once when it is empty).
    public func noteLost(_ count: Int, _ reason: LostReason) {
        lost[reason, default: 0] += count
        counters.add(reason == .rate ? .linesRateLimited : .linesDropped, count)
        if items.isEmpty && !offering { enqueueLostNotices() }
    }

    /// Queues a line that is not an entry, in this subscriber's format; never dropped.
    public func enqueueNotice(_ notice: Notice) {
        enqueue(notice.encoded(as: format))
    }

    /// Queues bytes made for this subscriber alone (a notice, a `/top` snapshot).
    public func enqueue(_ bytes: SharedBytes) {
        push(Item(bytes: bytes, range: 0..<bytes.count, lines: 0, decodedAtNanos: 0))
    }

    /// Calls `body` with queued bytes in order, from where the last write stopped, until it returns false.
    /// Inlinable: transports call it for every write, with a closure that should not be a call.
    @inlinable
    public func forEachQueuedSlice(_ body: (UnsafeRawBufferPointer) -> Bool) {
        guard !replayPending else { return }
        var offset = headOffset
        for item in items {
            let bytes = UnsafeRawBufferPointer(rebasing: item.bytes.bytes[(item.range.lowerBound + offset)..<item.range.upperBound])
            if !body(bytes) { return }
            offset = 0
        }
    }

    /// Marks `count` bytes as written; finished items are released.
    public func consume(_ count: Int) {
        var remaining = count
        while remaining > 0, let item = items.first {
            let left = item.range.count - headOffset
            if remaining < left {
                headOffset += remaining
                return
            }
            remaining -= left
            items.removeFirst()
            headOffset = 0
            uncharge(item, next: 0)
            queuedLines -= item.lines
            counters.add(.linesSent, item.lines)
            if item.decodedAtNanos != 0 {
                counters.deliveryLatency.record(micros: (clock() &- item.decodedAtNanos) / 1000)
            }
        }
        if items.isEmpty && !lost.isEmpty { enqueueLostNotices() }
    }

    private func enqueueLostNotices() {
        for reason in LostReason.allCases {
            guard let count = lost[reason] else { continue }
            enqueueNotice(.lost(count: count, reason: reason))
        }
        lost.removeAll()
    }
}
