/// Entries per second at most, with a one-second burst (a token bucket). Time comes from the
/// caller, in monotonic nanoseconds.
public struct RateLimit {
    public let perSecond: Double
    private var tokens: Double
    private var lastNanos: UInt64

    public init(perSecond: Double, now: UInt64) {
        self.perSecond = perSecond
        tokens = perSecond
        lastNanos = now
    }

    /// Adds the tokens earned since the last batch (once per batch, not per entry).
    public mutating func refill(now: UInt64) {
        tokens = min(perSecond, tokens + Double(now &- lastNanos) / 1e9 * perSecond)
        lastNanos = now
    }

    public mutating func take() -> Bool {
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
