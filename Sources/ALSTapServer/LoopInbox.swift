import ALSTapALS
import ALSTapMetrics
import ALSTapSystem

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
