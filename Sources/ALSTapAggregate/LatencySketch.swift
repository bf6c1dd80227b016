#if canImport(Glibc)
import Glibc
#endif

/// Durations counted in logarithmic buckets: any quantile within 1 % relative error, in at most
/// ~1 300 counters (5 KB) whatever the traffic, and mergeable bucket by bucket (windows add and
/// subtract their seconds; replicas add up).
///
/// Bucket 0 holds 0 µs; bucket b > 0 holds (γ^(b-2), γ^(b-1)] µs with γ = 1.02, and its estimate
/// 2γ^(b-1)/(γ+1) is within (γ−1)/(γ+1) < 1 % of every value in it. Durations are clamped to a
/// day (no bucket array grows past that, whatever a sender claims).
public struct LatencySketch: Equatable, Sendable {
    public static let gamma = 1.02
    private static let logGamma = log(gamma)
    public static let maxMicros: Int64 = 86_400 * 1_000_000

    /// The bucket of `counts[0]`.
    public private(set) var offset = 0
    public private(set) var counts: [UInt32] = []
    public private(set) var count = 0

    public init() {}

    @inline(__always)
    public static func bucket(micros: Int64) -> Int {
        guard micros > 0 else { return 0 }
        return Int((log(Double(min(micros, maxMicros))) / logGamma).rounded(.up)) + 1
    }

    /// The value a bucket stands for, in µs.
    public static func estimate(bucket: Int) -> Double {
        bucket == 0 ? 0 : 2 * pow(gamma, Double(bucket - 1)) / (gamma + 1)
    }

    public var isEmpty: Bool { count == 0 }

    /// Bytes the counters take (for memory bounds).
    public var bytes: Int { counts.capacity * MemoryLayout<UInt32>.stride }

    public mutating func add(micros: Int64) {
        add(bucket: Self.bucket(micros: micros), weight: 1)
    }

    /// Bytes the counters take now, beside `bytes` (capacity): what `add` returns the change of.
    @inline(__always)
    private var held: Int { counts.capacity &* MemoryLayout<UInt32>.stride }

    /// Adds one duration already turned into its bucket (`bucket(micros:)`, computed once per
    /// entry); returns the bytes the counters grew by (0 unless the range widened).
    @inline(__always)
    @discardableResult
    mutating func add(bucket: Int, weight: UInt32 = 1) -> Int {
        if bucket >= offset && bucket < offset &+ counts.count {
            counts[bucket &- offset] &+= weight
            count &+= Int(weight)
            return 0
        }
        let before = held
        widen(bucket: bucket, weight: weight)
        return held - before
    }

    @inline(never)
    private mutating func widen(bucket: Int, weight: UInt32) {
        if counts.isEmpty {
            offset = bucket
            counts = [weight]
        } else if bucket < offset {
            counts.insert(contentsOf: repeatElement(0, count: offset - bucket), at: 0)
            offset = bucket
            counts[0] = weight
        } else {
            counts.append(contentsOf: repeatElement(0, count: bucket - offset - counts.count + 1))
            counts[bucket - offset] = weight
        }
        count += Int(weight)
    }

    public mutating func add(_ other: LatencySketch) {
        guard !other.isEmpty else { return }
        if isEmpty {
            self = other
            return
        }
        for (i, weight) in other.counts.enumerated() where weight > 0 { add(bucket: other.offset + i, weight: weight) }
    }

    /// Takes out what an earlier `add(other)` put in (a second leaving a window).
    public mutating func subtract(_ other: LatencySketch) {
        guard !other.isEmpty else { return }
        for (i, weight) in other.counts.enumerated() where weight > 0 {
            let index = other.offset + i - offset
            precondition(index >= 0 && index < counts.count && counts[index] >= weight, "subtracting what was never added")
            counts[index] -= weight
        }
        count -= other.count
        if count == 0 {
            counts = []
            offset = 0
        }
    }

    /// The q-quantile (0 < q ≤ 1) in µs: the estimate of the bucket holding the ⌈q·count⌉-th
    /// smallest duration; nil when empty.
    public func quantile(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = max(1, Int((q * Double(count)).rounded(.up)))
        var seen = 0
        for (i, weight) in counts.enumerated() {
            seen += Int(weight)
            if seen >= rank { return Self.estimate(bucket: offset + i) }
        }
        return Self.estimate(bucket: offset + counts.count - 1)
    }
}
