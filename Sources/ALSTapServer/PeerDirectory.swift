import ALSTapSystem
#if canImport(Glibc)
import Glibc
#endif

/// `--peers`: the replicas a `scope=cluster` tap reads, this one included.
public enum PeerSpec: Sendable, Equatable {
    /// A headless Service: every address the name resolves to, re-resolved as pods come and go.
    case dns(name: String, port: UInt16)
    /// A fixed list of `host:port` (host names are resolved too).
    case list([HostPort])

    /// Parses `dns:NAME:PORT` or `HOST:PORT,HOST:PORT,...`; nil when malformed.
    public init?(parsing text: String) {
        func hostPort(_ part: Substring) -> HostPort? {
            guard let parsed = HostPort(parsing: String(part)), parsed.port > 0 else { return nil }
            return parsed
        }
        if text.hasPrefix("dns:") {
            guard let target = hostPort(text.dropFirst(4)) else { return nil }
            self = .dns(name: target.host, port: target.port)
            return
        }
        let parts = text.split(separator: ",")
        let list = parts.compactMap { hostPort($0.drop { $0 == " " }) }
        guard !list.isEmpty, list.count == parts.count else { return nil }
        self = .list(list)
    }
}

/// The peers' current addresses, kept fresh by a resolver thread (DNS lookups block, so they
/// stay off the event loops). Loops read the latest list on their ticks.
final class PeerDirectory: Sendable {
    static let refreshNanos: UInt64 = 5_000_000_000
    private let spec: PeerSpec
    private let current = Locked<[ListenAddress]>([])
    private let stopping = Locked(false)
    private let thread = Locked<LoopThread?>(nil)

    init(_ spec: PeerSpec) {
        self.spec = spec
    }

    var addresses: [ListenAddress] { current.withLock { $0 } }

    func start() {
        refresh()
        thread.withLock { thread in
            thread = LoopThread(name: "alstap-peers") { [self] in
                var next = monotonicNanos() + Self.refreshNanos
                while !stopping.withLock({ $0 }) {
                    if monotonicNanos() >= next {
                        refresh()
                        next = monotonicNanos() + Self.refreshNanos
                    }
                    usleep(100_000)
                }
            }
        }
    }

    func stop() {
        stopping.withLock { $0 = true }
        thread.withLock { $0?.join() }
    }

    private func refresh() {
        let resolved: [ListenAddress]
        switch spec {
        case .dns(let name, let port):
            resolved = Outbound.resolve(host: name, port: port)
        case .list(let list):
            resolved = list.flatMap { Outbound.resolve(host: $0.host, port: $0.port) }
        }
        // A failed lookup keeps the last answer: a DNS hiccup must not drop every peer.
        if !resolved.isEmpty { current.withLock { $0 = resolved } }
    }
}
