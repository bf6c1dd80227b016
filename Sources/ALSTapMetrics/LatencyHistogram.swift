/// Decode-to-socket latency of delivered lines, in µs, as a log-linear histogram (8 buckets per
/// power of two, so quantiles are within 12.5 %). Recorded once per delivered batch slice.
public final class LatencyHistogram: Sendable {
    @usableFromInline static let subBuckets = 8
    @usableFromInline static let bucketCount = 8 + 40 * 8
    @usableFromInline let buckets: [AtomicCounter]

    public init() {
        buckets = (0..<Self.bucketCount).map { _ in AtomicCounter() }
    }

    @inlinable
    public func record(micros: UInt64) {
        buckets[Self.index(micros)].add(1)
    }

    @inlinable
    static func index(_ value: UInt64) -> Int {
        guard value >= UInt64(subBuckets) else { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount  // >= 3
        let sub = Int(value >> (exponent - 3)) & (subBuckets - 1)
        return min(subBuckets + (exponent - 3) * subBuckets + sub, bucketCount - 1)
    }

    /// The upper bound of bucket `index`, in µs.
    static func upperBound(_ index: Int) -> UInt64 {
        guard index >= subBuckets else { return UInt64(index) }
        let exponent = (index - subBuckets) / subBuckets + 3
        let sub = UInt64((index - subBuckets) % subBuckets)
        return ((UInt64(subBuckets) + sub + 1) << (exponent - 3)) - 1
    }

    public var count: Int { buckets.reduce(0) { $0 + $1.value } }

    /// The value below which `quantile` of the samples fall (bucket upper bound), in µs.
    public func quantile(_ quantile: Double) -> UInt64 {
        let counts = buckets.map(\.value)
        let total = counts.reduce(0, +)
        guard total > 0 else { return 0 }
        let rank = Int((Double(total) * quantile).rounded(.up))
        var seen = 0
        for (index, count) in counts.enumerated() {
            seen += count
            if seen >= max(rank, 1) { return Self.upperBound(index) }
        }
        return Self.upperBound(counts.count - 1)
    }
}
