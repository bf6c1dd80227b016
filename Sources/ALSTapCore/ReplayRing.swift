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
        /// When it was received (monotonic nanoseconds): where a new `/top` aggregate counts it.
        public let receivedNanos: UInt64

        public init(sequence: UInt64, payload: SharedBytes, reporter: Reporter, entries: Int, receivedNanos: UInt64 = 0) {
            self.sequence = sequence
            self.payload = payload
            self.reporter = reporter
            self.entries = entries
            self.receivedNanos = receivedNanos
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
        /// A message was evicted or never kept (too large): the ring no longer holds everything.
        var incomplete = false
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
        withState { state in
            guard record.bytes <= capacityBytes else {  // would evict everything else
                state.incomplete = true
                return
            }
            state.records.append(record)
            state.entries += record.entries
            state.bytes += record.bytes
            while state.entries > capacityEntries || state.bytes > capacityBytes,
                  let oldest = state.records.first, state.records.count > 1 {
                state.records.removeFirst()
                state.firstPosition += 1
                state.incomplete = true
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

    /// The newest records holding at most `entries` entries, oldest first, and whether they are
    /// everything the ring was ever given (nothing older was evicted or left out).
    public func newest(entries: Int) -> (records: [Record], complete: Bool) {
        withState { state in
            var taken = 0
            var first = state.records.count
            while first > 0 && taken + state.records[first - 1].entries <= entries {
                first -= 1
                taken += state.records[first].entries
            }
            return (Array(state.records[first...]), isEnabled && first == 0 && !state.incomplete)
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
