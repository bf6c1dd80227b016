import ALSTapALS
import ALSTapFilter
import ALSTapSystem
import DequeModule

/// Where a subscriber's bytes go (an HTTP/1.1 chunked response or an HTTP/2 stream).
protocol SubscriberTransport: AnyObject {
    /// New lines were queued (or the stream should end); write them when the socket allows.
    func subscriberHasData()
}

/// One tap client: a bounded queue of shared, already-encoded lines.
///
/// Loop-confined: created, fed and drained only on the loop that owns its connection.
/// A full queue drops new batches for this subscriber alone and counts them; once the queue
/// has drained, a `lost` line tells the client how many it missed.
final class Subscriber {
    let format: OutputFormat
    /// nil: every entry.
    let filter: TapFilter?
    let capacityLines: Int
    private let counters: Counters
    weak var transport: (any SubscriberTransport)?

    private struct Item {
        let bytes: SharedBytes
        let range: Range<Int>
        let lines: Int
        /// When the batch was decoded (0 for notices).
        let decodedAtNanos: UInt64
    }

    /// Written items leave at once, releasing their share of the batch.
    private var items = Deque<Item>()
    /// Bytes of `items.first` already written.
    private var headOffset = 0
    private(set) var queuedLines = 0
    private var lost = 0
    /// Set on shutdown: once the queue (ending with the shutdown notice) is written, the stream ends.
    private(set) var isFinishing = false

    init(format: OutputFormat, filter: TapFilter?, capacityLines: Int, counters: Counters) {
        self.format = format
        self.filter = filter
        self.capacityLines = capacityLines
        self.counters = counters
    }

    var hasData: Bool { !items.isEmpty }

    /// Queues the lines of the batch's entries that pass the filter; drops them all if they do
    /// not fit the queue.
    func offer(_ batch: EncodedBatch) {
        guard !isFinishing, let lines = batch.lines(for: format) else { return }
        guard let filter else {
            enqueue(lines, entries: 0..<batch.entryCount, decodedAt: batch.decodedAtNanos)
            return
        }
        guard let table = batch.facts else { return }
        // One pass: consecutive matches become one slice of the shared bytes. A batch that
        // does not fit the queue as a whole is dropped as a whole.
        let mark = items.count
        let linesBefore = queuedLines
        var runStart = -1
        filter.withMatcher { matcher in
            for (index, facts) in table.facts.enumerated() {
                if matcher.matches(facts, in: table) {
                    if runStart < 0 { runStart = index }
                } else if runStart >= 0 {
                    append(lines, entries: runStart..<index, decodedAt: batch.decodedAtNanos)
                    runStart = -1
                }
            }
        }
        if runStart >= 0 { append(lines, entries: runStart..<batch.entryCount, decodedAt: batch.decodedAtNanos) }
        if queuedLines > capacityLines {
            let matched = queuedLines - linesBefore
            items.removeLast(items.count - mark)
            queuedLines = linesBefore
            noteLost(matched)
        }
    }

    private func enqueue(_ lines: EncodedLines, entries: Range<Int>, decodedAt: UInt64) {
        if queuedLines + entries.count > capacityLines {
            noteLost(entries.count)
            return
        }
        append(lines, entries: entries, decodedAt: decodedAt)
    }

    private func append(_ lines: EncodedLines, entries: Range<Int>, decodedAt: UInt64) {
        items.append(Item(bytes: lines.bytes, range: lines.range(entries), lines: entries.count,
                          decodedAtNanos: decodedAt))
        queuedLines += entries.count
    }

    /// Queues the final notice; the transport ends the stream once everything before it is written.
    func finish() {
        guard !isFinishing else { return }
        enqueueNotice(SharedBytes(format == .json ? "{\"type\":\"shutdown\"}\n" : "# alstap is shutting down\n"))
        isFinishing = true
        transport?.subscriberHasData()
    }

    /// True when the stream should end now: finishing and nothing left to write.
    var isFinished: Bool { isFinishing && items.isEmpty }

    /// Entries this subscriber missed (its queue or its loop's inbox was full).
    func noteLost(_ count: Int) {
        lost += count
        counters.add(.linesDropped, count)
    }

    /// Queues a line that is not an entry (notices); never dropped.
    func enqueueNotice(_ bytes: SharedBytes) {
        items.append(Item(bytes: bytes, range: 0..<bytes.count, lines: 0, decodedAtNanos: 0))
    }

    /// Calls `body` with queued bytes in order, from where the last write stopped, until it returns false.
    func forEachQueuedSlice(_ body: (UnsafeRawBufferPointer) -> Bool) {
        var offset = headOffset
        for item in items {
            let bytes = UnsafeRawBufferPointer(rebasing: item.bytes.bytes[(item.range.lowerBound + offset)..<item.range.upperBound])
            if !body(bytes) { return }
            offset = 0
        }
    }

    /// Marks `count` bytes as written; finished items are released.
    func consume(_ count: Int) {
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
            queuedLines -= item.lines
            counters.add(.linesSent, item.lines)
            if item.decodedAtNanos != 0 {
                counters.deliveryLatency.record(micros: (monotonicNanos() &- item.decodedAtNanos) / 1000)
            }
        }
        if items.isEmpty && lost > 0 { enqueueLostNotice() }
    }

    private func enqueueLostNotice() {
        let notice = switch format {
        case .json: "{\"type\":\"lost\",\"count\":\(lost)}\n"
        case .text: "# lost \(lost) entries: this subscriber read too slowly\n"
        }
        lost = 0
        enqueueNotice(SharedBytes(notice))
    }
}
