import ALSTapMetrics
import ALSTapSystem
import Logging

/// Accepts connections on one loop's own SO_REUSEPORT listening socket.
final class Acceptor: EventHandler {
    let fd: Int32
    let role: ListenerRole
    unowned let context: LoopContext

    init(fd: Int32, role: ListenerRole, context: LoopContext) {
        self.fd = fd
        self.role = role
        self.context = context
    }

    func handle(events: UInt32) {
        while true {
            let client: Int32?
            do {
                client = try Syscalls.accept(fd)
            } catch {
                // EMFILE and friends: log and let the next readiness event retry.
                context.logger.warning("accept failed: \(error)")
                return
            }
            guard let client else { return }
            guard context.counters.get(.connectionsActive) < context.config.maxConnections else {
                // Over --max-connections: accepted only to be closed, so the backlog does not fill.
                Syscalls.close(client)
                context.counters.add(.connectionsRejected)
                continue
            }
            Syscalls.setNoDelay(client)
            let sniffer = ProtocolSniffer(fd: client, role: role, context: context)
            do {
                try context.loop.register(client, handler: sniffer,
                                          events: EventMask.readable | EventMask.peerClosedWriting)
            } catch {
                Syscalls.close(client)
                continue
            }
            context.counters.add(.connectionsAccepted)
            context.counters.add(.connectionsActive)
            context.watchHead(sniffer)
        }
    }

    private var isClosed = false

    func close() {
        guard !isClosed else { return }
        isClosed = true
        context.loop.deregister(fd)
        Syscalls.close(fd)
    }

    func loopStopped() { close() }
}

/// Reads a new connection's first bytes: the HTTP/2 client preface means HTTP/2 (gRPC from
/// Envoy, `curl --http2-prior-knowledge`); anything else is HTTP/1.1.
final class ProtocolSniffer: Connection, HeadDeadline {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    let headDeadlineNanos: UInt64
    private var received: [UInt8] = []

    override init(fd: Int32, role: ListenerRole, context: LoopContext) {
        headDeadlineNanos = monotonicNanos() + context.config.headTimeoutMillis * 1_000_000
        super.init(fd: fd, role: role, context: context)
    }

    func headTimedOut() { close() }

    override func closing() { context.unwatchHead(self) }

    override func readable() {
        guard let bytes = readOnce() else { return }
        received.append(contentsOf: bytes)
        let compared = min(received.count, Self.preface.count)
        let matchesPreface = received[..<compared].elementsEqual(Self.preface[..<compared])
        if matchesPreface && received.count < Self.preface.count { return }  // wait for the rest
        context.unwatchHead(self)
        let next: Connection & InitialBytesConsumer = matchesPreface
            ? HTTP2Connection(fd: fd, role: role, context: context)
            : HTTP1Connection(fd: fd, role: role, context: context)
        context.loop.replaceHandler(fd, with: next)
        received.withUnsafeBytes { next.start(with: $0) }
    }
}

/// A protocol connection that takes over a socket with the bytes already read from it.
protocol InitialBytesConsumer: AnyObject {
    func start(with initialBytes: UnsafeRawBufferPointer)
}
