import Synchronization

/// Server-wide counters, updated once per message or batch (never per entry), read by /metrics and tests.
public final class Counters: Sendable {
    public enum Name: Int, CaseIterable, Sendable {
        case connectionsAccepted, connectionsActive
        case alsStreamsStarted, alsStreamsActive, alsStreamsOK, alsStreamsFailed
        case messagesReceived, entriesReceived, decodeErrors, oversizedMessages
        case subscribersActive, linesSent, linesDropped, inboxDropped
        case headTooLarge, headTimeouts
    }

    private let values: [AtomicCounter]
    /// From decoding a message to writing its lines to a subscriber's socket.
    public let deliveryLatency = LatencyHistogram()

    public init() {
        values = Name.allCases.map { _ in AtomicCounter() }
    }

    public func add(_ name: Name, _ amount: Int = 1) { values[name.rawValue].add(amount) }

    public func subtract(_ name: Name, _ amount: Int = 1) { values[name.rawValue].add(-amount) }

    public func get(_ name: Name) -> Int { values[name.rawValue].value }

    /// `name value` lines for every counter (the /stats endpoint).
    public func snapshot() -> String {
        var lines = Name.allCases.map { "\($0) \(get($0))" }
        lines.append("latencySamples \(deliveryLatency.count)")
        for (name, q) in [("latencyP50Micros", 0.5), ("latencyP99Micros", 0.99), ("latencyP999Micros", 0.999)] {
            lines.append("\(name) \(deliveryLatency.quantile(q))")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// One relaxed atomic integer (Atomic is non-copyable, so arrays hold these boxes).
final class AtomicCounter: Sendable {
    private let atomic = Atomic<Int>(0)

    @inline(__always)
    func add(_ amount: Int) { atomic.wrappingAdd(amount, ordering: .relaxed) }

    var value: Int { atomic.load(ordering: .relaxed) }
}
