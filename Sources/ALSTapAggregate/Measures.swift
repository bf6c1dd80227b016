import ALSTapMetrics

/// What a group (or one second of it) adds up.
struct Measures {
    var requests = 0
    var errors = 0
    var bytesReceived: UInt64 = 0
    var bytesSent: UInt64 = 0
    var latency = LatencySketch()
    var overhead = LatencySketch()
    /// Exact maxima (seconds keep theirs; a window takes the largest of its seconds').
    var maxMicros: Int64 = -1
    var maxOverheadMicros: Int64 = Int64.min
    /// Response flag field number → entries with it.
    var flags: [UInt8: Int] = [:]

    mutating func add(_ other: Measures) {
        requests += other.requests
        errors += other.errors
        bytesReceived &+= other.bytesReceived
        bytesSent &+= other.bytesSent
        latency.add(other.latency)
        overhead.add(other.overhead)
        maxMicros = max(maxMicros, other.maxMicros)
        maxOverheadMicros = max(maxOverheadMicros, other.maxOverheadMicros)
        for (flag, count) in other.flags { flags[flag, default: 0] += count }
    }

    /// Takes out a second that leaves the window (maxima are recomputed from the seconds left).
    mutating func subtract(_ other: Measures) {
        requests -= other.requests
        errors -= other.errors
        bytesReceived &-= other.bytesReceived
        bytesSent &-= other.bytesSent
        latency.subtract(other.latency)
        overhead.subtract(other.overhead)
        for (flag, count) in other.flags {
            let left = flags[flag, default: 0] - count
            flags[flag] = left > 0 ? left : nil
        }
    }

    /// Memory its sketches and flags hold beyond the struct (what `add` reports the growth of).
    var heldBytes: Int { latency.bytes + overhead.bytes + flags.count * 16 }

    /// Adds one entry; returns the bytes its sketches and flags grew by (0 almost always).
    @discardableResult
    mutating func add(_ sample: Sample) -> Int {
        requests += 1
        if sample.error { errors += 1 }
        bytesReceived &+= sample.bytesReceived
        bytesSent &+= sample.bytesSent
        var grown = 0
        if sample.durationMicros >= 0 {
            grown += latency.add(bucket: sample.latencyBucket)
            maxMicros = max(maxMicros, sample.durationMicros)
        }
        if let overhead = sample.overheadMicros {
            grown += self.overhead.add(bucket: sample.overheadBucket)
            maxOverheadMicros = max(maxOverheadMicros, overhead)
        }
        var bits = sample.flags
        while bits != 0 {
            let bit = UInt8(bits.trailingZeroBitCount)
            let before = flags.count
            flags[bit + 1, default: 0] += 1
            grown += (flags.count - before) * 16
            bits &= bits - 1
        }
        return grown
    }
}

/// One entry's contribution, computed once (its sketch buckets too) and added to its group's
/// second and to the group's totals.
struct Sample {
    var error = false
    var bytesReceived: UInt64 = 0
    var bytesSent: UInt64 = 0
    var durationMicros: Int64 = -1
    var latencyBucket = 0
    var overheadMicros: Int64?
    var overheadBucket = 0
    var flags: UInt32 = 0
}

/// The bytes every `/top` aggregate of the process may hold together (shared across loops).
public final class TopBudget: Sendable {
    public let limit: Int
    private let used = AtomicCounter()

    public init(limit: Int) { self.limit = limit }

    public var usedBytes: Int { used.value }
    var isExhausted: Bool { used.value > limit }
    func charge(_ bytes: Int) { used.add(bytes) }
}
