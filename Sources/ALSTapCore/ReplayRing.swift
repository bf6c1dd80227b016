import ALSTapALS
import DequeModule

/// Mutual exclusion for state that threads share, supplied by whoever shares it: the core holds
/// no thread code. The server's is a pthread mutex (which ThreadSanitizer sees, as it does not see
/// `Synchronization.Mutex`'s futex calls on Linux).
public protocol CriticalSection: Sendable {
    func run<Result>(_ body: () -> Result) -> Result
}

/// No exclusion at all: for state that one thread alone uses (unit tests, an offline reader).
public struct OneThread: CriticalSection {
    public init() {}
    public func run<Result>(_ body: () -> Result) -> Result { body() }
}

/// The most recent messages, kept as received (protobuf bytes and their reporter), for `last=K`.
///
/// Raw messages rather than encoded lines: a replay can then give any format and any filter, and
/// ingestion pays one copy of the message instead of encoding every format for everyone. A
/// replay decodes them again, a few per loop turn, on the asking subscriber's loop. Bounded by
/// entries and by bytes (a message of one entry may be megabytes). Loops append and read it from
/// their own threads: every access to its state is inside `section`.
///
/// `@unchecked Sendable`: `state` is only touched inside `section.run`.
public final class ReplayRing: @unchecked Sendable {
    public struct Record: Sendable {
        public let sequence: UInt64
        public let payload: SharedBytes
        public let reporter: Reporter
        public let entries: Int

        public init(sequence: UInt64, payload: SharedBytes, reporter: Reporter, entries: Int) {
            self.sequence = sequence
            self.payload = payload
            self.reporter = reporter
            self.entries = entries
        }

        /// What it keeps alive: the message, and its reporter (counted with every record that
        /// holds it: an overcount where records share one, never an undercount).
        public var bytes: Int { payload.count + reporter.retainedBytes }
    }

    private struct State {
        var records = Deque<Record>()
        /// The position of `records.first` counted since the ring began (positions never repeat).
        var firstPosition = 0
        var entries = 0
        var bytes = 0
    }

    public let capacityEntries: Int
    public let capacityBytes: Int
    private let section: any CriticalSection
    private var state = State()

    public init(capacityEntries: Int, capacityBytes: Int = .max, section: any CriticalSection) {
        self.capacityEntries = capacityEntries
        self.capacityBytes = capacityBytes
        self.section = section
    }

    private func withState<Result>(_ body: (inout State) -> Result) -> Result {
        section.run { body(&state) }
    }

    public var isEnabled: Bool { capacityEntries > 0 && capacityBytes > 0 }

    public func append(_ record: Record) {
        guard record.bytes <= capacityBytes else { return }  // would evict everything else
        withState { state in
            state.records.append(record)
            state.entries += record.entries
            state.bytes += record.bytes
            while state.entries > capacityEntries || state.bytes > capacityBytes,
                  let oldest = state.records.first, state.records.count > 1 {
                state.records.removeFirst()
                state.firstPosition += 1
                state.entries -= oldest.entries
                state.bytes -= oldest.bytes
            }
        }
    }

    /// The newest record's position and sequence (nil when empty).
    public func newest() -> (position: Int, sequence: UInt64)? {
        withState { state in
            state.records.last.map { (state.firstPosition + state.records.count - 1, $0.sequence) }
        }
    }

    /// Up to `count` records at positions `...through`, newest first; fewer (or none) when older
    /// ones were evicted meanwhile.
    public func records(through position: Int, count: Int) -> [Record] {
        withState { state in
            let last = position - state.firstPosition
            guard last >= 0 else { return [] }
            let first = max(0, last - count + 1)
            return (first...min(last, state.records.count - 1)).reversed().map { state.records[$0] }
        }
    }
}
