import ALSTapALS
import ALSTapSystem
import DequeModule

/// The most recent messages, kept as received (protobuf bytes and their reporter), for `last=K`.
///
/// Raw messages rather than encoded lines: a replay can then give any format and any filter, and
/// ingestion pays one copy of the message instead of encoding every format for everyone. A
/// replay decodes them again, on the asking subscriber's loop. Bounded by entries.
final class ReplayRing: Sendable {
    struct Record: Sendable {
        let sequence: UInt64
        let payload: SharedBytes
        let reporter: Reporter
        let entries: Int
    }

    private struct State {
        var records = Deque<Record>()
        var entries = 0
    }

    let capacityEntries: Int
    private let state = Locked(State())

    init(capacityEntries: Int) {
        self.capacityEntries = capacityEntries
    }

    var isEnabled: Bool { capacityEntries > 0 }

    func append(_ record: Record) {
        state.withLock { state in
            state.records.append(record)
            state.entries += record.entries
            while state.entries > capacityEntries, let oldest = state.records.first, state.records.count > 1 {
                state.records.removeFirst()
                state.entries -= oldest.entries
            }
        }
    }

    /// Oldest first.
    func snapshot() -> [Record] {
        state.withLock { Array($0.records) }
    }
}
