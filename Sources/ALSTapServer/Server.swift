import ALSTapAggregate
import ALSTapALS
import ALSTapMetrics
import ALSTapSystem
import Logging

/// `alstap serve`: one event loop per thread, each accepting on its own SO_REUSEPORT sockets.
public final class Server: Sendable {
    public let counters = Counters()
    public let alsPort: UInt16
    public let httpPort: UInt16
    private let fanout: Fanout
    private let contexts: [LoopContext]
    private let acceptors: UncheckedBox<[[Acceptor]]>
    private let threads = Locked<[LoopThread]>([])
    private let peerDirectory: PeerDirectory?
    /// Loops that have run their shutdown task: until all have, the server is not drained.
    private let loopsShutDown = AtomicCounter()

    public init(config: ServerConfig, logger: Logger) throws {
        Memory.setMmapThreshold(64 << 20)
        let loops = try (0..<max(1, config.threads)).map { try EventLoop(index: $0) }
        fanout = Fanout(loops: loops, inboxLimit: config.loopInboxEntries, inboxBytes: config.loopInboxBytes,
                        replayEntries: config.replayEntries, replayBytes: config.replayBytes, counters: counters)
        let fanout = fanout
        let counters = counters
        let peerDirectory = config.peers.map(PeerDirectory.init)
        self.peerDirectory = peerDirectory
        let topBudget = TopBudget(limit: config.topBytes)
        contexts = loops.map {
            LoopContext(loop: $0, config: config, fanout: fanout, counters: counters, logger: logger, peerDirectory: peerDirectory,
                        topBudget: topBudget)
        }

        // Port 0 binds an ephemeral port on the first loop; the other loops join that port.
        // One address named for both roles is one listener that takes both.
        var alsAddress = config.alsListen
        var httpAddress = config.httpListen
        let shared = alsAddress == httpAddress && alsAddress.port != 0
        try Listener.checkAvailable(alsAddress)
        if !shared { try Listener.checkAvailable(httpAddress) }
        var acceptors: [[Acceptor]] = []
        for context in contexts {
            var loopAcceptors: [Acceptor] = []
            let als = try Listener.open(alsAddress)
            alsAddress = ListenAddress(host: alsAddress.host, port: als.port)
            loopAcceptors.append(Acceptor(fd: als.fd, role: shared ? [.ingest, .tap] : .ingest, context: context))
            if shared {
                httpAddress = alsAddress
            } else {
                let http = try Listener.open(httpAddress)
                httpAddress = ListenAddress(host: httpAddress.host, port: http.port)
                loopAcceptors.append(Acceptor(fd: http.fd, role: .tap, context: context))
            }
            for acceptor in loopAcceptors {
                try context.loop.register(acceptor.fd, handler: acceptor, events: EventMask.readable)
            }
            acceptors.append(loopAcceptors)
        }
        self.acceptors = UncheckedBox(acceptors)
        alsPort = alsAddress.port
        httpPort = httpAddress.port
    }

    /// Starts one thread per loop.
    public func start() {
        peerDirectory?.start()
        threads.withLock { threads in
            for context in contexts {
                let loop = context.loop
                loop.onWake = { context.deliverInbox() }
                loop.onIterationEnd = { context.deliverInbox() }
                loop.onTick = { context.tick(now: $0) }
                threads.append(LoopThread(name: "alstap-loop-\(loop.index)") { loop.run() })
            }
        }
    }

    /// Stops accepting, marks the server not ready, sends HTTP/2 clients the shutdown notice and
    /// then GOAWAY (Envoy moves to another replica), ends Envoy's streams, and gives every
    /// subscriber a final `{"type":"shutdown"}` line before its stream ends. Returns at once;
    /// `isDrained` tells when nothing is left, `stop()` ends it.
    /// `--drain-delay`, before `beginShutdown`: `/readyz` fails at once, everything else goes on,
    /// so the load balancer in front (a Service's endpoints, an Envoy health check) stops sending
    /// new streams here before the streams are ended and reconnect.
    public func announceDrain() {
        fanout.drainAnnounced.add(1)
    }

    /// `graceSeconds`: how long the process waits (`--shutdown-grace`); subscribers get their
    /// last line within three quarters of it even if an ingest stream is still open.
    public func beginShutdown(graceSeconds: Double = 5) {
        let loopsShutDown = loopsShutDown
        let graceNanos = UInt64(max(0, graceSeconds) * 1e9)
        for (index, context) in contexts.enumerated() {
            let acceptors = UncheckedBox(self.acceptors.value[index])
            context.inbox.push(task: {
                acceptors.value.forEach { $0.close() }
                context.beginShutdown(graceNanos: graceNanos)
                loopsShutDown.add(1)
            })
            context.loop.wake()
        }
    }

    /// True once every loop has begun its shutdown and every subscriber stream and every ALS
    /// stream has ended.
    public var isDrained: Bool {
        loopsShutDown.value == contexts.count
            && counters.get(.subscribersActive) == 0 && counters.get(.alsStreamsActive) == 0
    }

    /// Stops every loop and waits for the threads.
    public func stop() {
        peerDirectory?.stop()
        for context in contexts { context.loop.stop() }
        threads.withLock { threads in
            threads.forEach { $0.join() }
            threads.removeAll()
        }
        // The threads are gone, so their loop-confined state may be touched here.
        for context in contexts { context.tearDown() }
    }
}

/// Carries loop-confined objects into a task that runs on their own loop.
/// `@unchecked Sendable`: the value is only touched by the task, on the owning loop's thread.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
