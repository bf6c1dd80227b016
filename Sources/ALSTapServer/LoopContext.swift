import ALSTapAggregate
import ALSTapALS
import ALSTapCore
import ALSTapFilter
import ALSTapFormats
import ALSTapMetrics
import ALSTapSystem
import Logging

/// Something with a deadline for finishing its request head (or HTTP/2 preface).
protocol HeadDeadline: AnyObject {
    var headDeadlineNanos: UInt64 { get }
    func headTimedOut()
}

/// One loop's wiring: its connections' shared buffers and decoder, the ingest methods it
/// serves, its taps (`TapHub`, the logic) and cluster taps, the HTTP/2 connections to tell on
/// shutdown, and the head-timeout watchdog.
///
/// `@unchecked Sendable`: it is created on the main thread before the loop starts and then
/// used only by that loop's thread (everything arrives through `EventLoop` callbacks).
final class LoopContext: @unchecked Sendable {
    let loop: EventLoop
    let config: ServerConfig
    let fanout: Fanout
    let counters: Counters
    let logger: Logger
    let decoder: ALSDecoder
    /// Socket reads land here; protocol code consumes the bytes before the next read.
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
    /// Output gathered before one write (HTTP/2 frames).
    let sendScratch = ByteWriter(capacity: 256 * 1024)
    private(set) var ingest = IngestRegistry([])
    /// OTLP's logs service, also reached over HTTP/1.1 (`POST /v1/logs`). Set at the end of `init`
    /// (it refers back to the context).
    private(set) var otlp: OTLPIngest!
    let taps: TapHub
    private let demand: LoopDemand
    private var waitingForHead: [ObjectIdentifier: any HeadDeadline] = [:]
    /// Where the replicas are, for `scope=cluster` taps (nil without `--peers`).
    let peerDirectory: PeerDirectory?
    /// The sources of this loop's `scope=cluster` subscribers, by subscriber.
    private var clusterTaps: [ObjectIdentifier: ClusterTap] = [:]
    /// This loop's `/top` aggregates, by the subscriber their snapshots are written to.
    private var topSinks: [ObjectIdentifier: TopSink] = [:]
    /// The bytes all loops' aggregates share.
    private let topBudget: TopBudget
    /// `fields=` projections, shared by this loop's masked subscribers.
    private let maskedLines = MaskedLines()
    /// HTTP/2 connections, for the shutdown notice and GOAWAY.
    private var http2Connections: [ObjectIdentifier: HTTP2Connection] = [:]
    var draining: Bool { taps.draining }

    /// What `/readyz` answers now (a refusal is counted).
    func readiness() -> Readiness {
        let draining = draining || fanout.drainAnnounced.value != 0
        var readiness = Readiness.evaluate(draining: draining, residentBytes: Memory.residentBytes(),
                                           maxBytes: config.readyMaxMemoryBytes)
        if !readiness.ready && !draining {
            // Over the bound: what the heap freed since the peak is given back, then measured again.
            Memory.trim()
            readiness = Readiness.evaluate(draining: false, residentBytes: Memory.residentBytes(),
                                           maxBytes: config.readyMaxMemoryBytes)
        }
        if !readiness.ready { counters.add(.notReadyAnswers) }
        return readiness
    }
    /// When the final GOAWAY goes out (one tick after the shutdown notice).
    private var goAwayAtNanos: UInt64?
    /// Shutdown: the final GOAWAY went to every HTTP/2 connection (one that starts later gets it at once).
    private(set) var goAwaySent = false
    /// Shutdown: when subscribers get their last line even if ingest streams are still open.
    private var finishSubscribersAtNanos: UInt64?

    init(loop: EventLoop, config: ServerConfig, fanout: Fanout, counters: Counters, logger: Logger,
         peerDirectory: PeerDirectory?, topBudget: TopBudget) {
        self.loop = loop
        self.topBudget = topBudget
        self.peerDirectory = peerDirectory
        self.config = config
        self.fanout = fanout
        self.counters = counters
        self.logger = logger
        let decoder = ALSDecoder(redactedHeaders: config.redactedHeaders, limits: config.decodeLimits)
        self.decoder = decoder
        demand = LoopDemand(fanout: fanout, loop: loop.index)
        taps = TapHub(limits: config.tapLimits, counters: counters, ring: fanout.replayRing, demand: demand) {
            record, formats, facts in
            var reporter = record.reporter
            return try? decoder.decode(record.payload.bytes, reporter: &reporter, formats: formats, facts: facts,
                                       decodedAtNanos: 0)
        }
        otlp = OTLPIngest(context: self)
        ingest = IngestRegistry([ALSIngest(context: self), otlp])
    }

    deinit { readBuffer.deallocate() }

    var inbox: LoopInbox { fanout.inboxes[loop.index] }

    /// The result of asking for a tap: a subscriber to attach, or the answer that refuses it.
    enum TapOpening {
        case opened(Subscriber)
        case refused(HTTPResponse)
    }

    /// Starts a `/tap` or `/top` stream.
    func open(_ request: StreamRequest) -> TapOpening {
        switch request {
        case .tap(let query): openTap(query)
        case .top(let query): openTop(query)
        }
    }

    /// Starts a `/top` aggregate: a sink of the hub that writes snapshots into a subscriber's queue.
    /// With `scope=cluster` the sink is fed by a cluster tap reading every replica's entries.
    private func openTop(_ query: TopQuery) -> TapOpening {
        if query.tap.clusterScope && peerDirectory == nil { return .refused(.clusterNeedsPeers) }
        let output = Subscriber(format: query.tap.format, filter: nil, capacityLines: config.subscriberQueueLines,
                                capacityBytes: config.subscriberQueueBytes, totalCapacityBytes: config.subscribersQueueBytes,
                                counters: counters, clock: monotonicNanos)
        let sink = TopSink(query: query, output: output, limits: TopLimits(maxGroups: config.topGroups, budget: topBudget),
                           counters: counters, clock: monotonicNanos)
        if let peerDirectory, query.tap.clusterScope {
            guard taps.mayOpen() else { return .refused(.tooManySubscribers) }
            counters.add(.subscribersActive)
            // The snapshots follow or not; the peers' entries always do.
            var live = query.tap
            live.follow = true
            clusterTaps[ObjectIdentifier(output)] = ClusterTap(subscriber: output, query: live, context: self,
                                                               directory: peerDirectory, aggregate: sink)
        } else {
            guard taps.add(sink) else { return .refused(.tooManySubscribers) }
            // Registered first, so no live batch is missed; the ring's newest messages start it.
            if !query.tap.pair {
                let (batches, complete) = taps.history(maxEntries: TopSink.historyEntries, facts: sink.needs.facts)
                sink.seed(batches, complete: complete, serverStartedNanos: fanout.startedNanos)
            }
        }
        topSinks[ObjectIdentifier(output)] = sink
        return .opened(output)
    }

    /// Starts a tap for `query`: this replica's entries, or with `scope=cluster` every peer's.
    private func openTap(_ query: TapQuery) -> TapOpening {
        let subscriber = Subscriber(format: query.format, filter: query.clusterScope ? nil : query.filter,
                                    maxEntriesPerSecond: query.maxEntriesPerSecond,
                                    pairs: query.pair && !query.clusterScope,
                                    fields: query.fields.map { ($0, maskedLines) },
                                    capacityLines: config.subscriberQueueLines, capacityBytes: config.subscriberQueueBytes,
                                    totalCapacityBytes: config.subscribersQueueBytes, counters: counters,
                                    clock: monotonicNanos)
        if query.format == .capture {
            // Receive times on the wall clock, for the records (one offset: the clocks move together).
            let offset = wallClockMicros() - Int64(monotonicNanos() / 1000)
            subscriber.wallMicros = { offset + Int64($0 / 1000) }
        }
        guard query.clusterScope else {
            let since = query.sinceMicros.map(monotonicNanos(atWallMicros:))
            guard taps.open(subscriber, last: query.last, sinceNanos: since, follow: query.follow) else {
                return .refused(.tooManySubscribers)
            }
            if taps.hasReplays { loop.wake() }
            return .opened(subscriber)
        }
        guard let peerDirectory else { return .refused(.clusterNeedsPeers) }
        guard taps.mayOpen() else { return .refused(.tooManySubscribers) }
        counters.add(.subscribersActive)
        clusterTaps[ObjectIdentifier(subscriber)] = ClusterTap(subscriber: subscriber, query: query, context: self,
                                                               directory: peerDirectory)
        return .opened(subscriber)
    }

    /// Ends a tap from `openTap` (its client left).
    func closeTap(_ subscriber: Subscriber) {
        let id = ObjectIdentifier(subscriber)
        let top = topSinks.removeValue(forKey: id)
        if let tap = clusterTaps.removeValue(forKey: id) {
            tap.stop()
            counters.subtract(.subscribersActive)
        } else {
            taps.remove(top ?? subscriber)
        }
        subscriber.release()
    }

    func http2Opened(_ connection: HTTP2Connection) {
        http2Connections[ObjectIdentifier(connection)] = connection
    }

    func http2Closed(_ connection: HTTP2Connection) {
        http2Connections[ObjectIdentifier(connection)] = nil
    }

    /// Shutdown, on this loop: not ready any more, no new taps, HTTP/2's shutdown notice to
    /// every client (the final GOAWAY, which ends Envoy's streams, follows on a later tick).
    /// Subscribers get their last line once no ingest stream is left, so that they see every
    /// entry this replica counted (a cluster tap then resumes elsewhere with nothing missing),
    /// or at the latest 2.6 s on (or three quarters of the grace period, if that is shorter).
    func beginShutdown(graceNanos: UInt64) {
        taps.beginShutdown()
        for connection in http2Connections.values { connection.announceShutdown() }
        let now = monotonicNanos()
        goAwayAtNanos = now + 100_000_000
        loop.tick(atOrBefore: now + 100_000_000)
        finishSubscribersAtNanos = now + min(100_000_000 + GRPCIngestStream.lateMessagesNanos / 4, graceNanos / 4 * 3)
    }

    /// Shutdown: whether no ingest stream is left (in any loop), or the wait is over. Asked
    /// before the inbox is drained: a stream publishes its last message before it counts as
    /// ended, so once this is true that message is in the inbox about to be drained.
    private func ingestEnded(now: UInt64) -> Bool {
        guard let deadline = finishSubscribersAtNanos else { return false }
        return now >= deadline || counters.get(.alsStreamsActive) == 0
    }

    /// Shutdown, the end: every subscriber gets its last line.
    private func finishSubscribers() {
        finishSubscribersAtNanos = nil
        taps.finishAll()
        for tap in clusterTaps.values {
            tap.stop()
            tap.subscriber.finish(notice: .shutdown)
        }
    }

    /// After the loop's thread has ended: closes what is still registered and drops what other
    /// threads queued for the loop (a task holds this context, so a queued one would keep the
    /// whole server alive).
    func tearDown() {
        loop.tearDown()
        _ = inbox.drain()
    }

    func watchHead(_ connection: any HeadDeadline) {
        waitingForHead[ObjectIdentifier(connection)] = connection
    }

    func unwatchHead(_ connection: any HeadDeadline) {
        waitingForHead[ObjectIdentifier(connection)] = nil
    }

    /// Offers everything other loops (and this one) published to this loop's sinks.
    func deliverInbox() {
        let ended = finishSubscribersAtNanos != nil && ingestEnded(now: monotonicNanos())
        let (batches, dropped, tasks) = inbox.drain()
        for task in tasks { task() }
        if taps.stepReplays(clock: monotonicNanos) { loop.wake() }
        if !batches.isEmpty || dropped > 0 { taps.deliver(batches, dropped: dropped, now: monotonicNanos()) }
        // After the delivery: a draining replica's last entries reach its subscribers first.
        if ended { finishSubscribers() }
    }

    func tick(now: UInt64) {
        counters.add(.staleEvents, loop.takeStaleEvents())
        taps.expirePairs(now: now)
        if !topSinks.isEmpty {
            let wall = wallClockMicros()
            for top in topSinks.values where top.tick(now: now, wallMicros: wall) {
                top.output.transport?.subscriberHasData()
            }
        }
        if !draining { for tap in clusterTaps.values { tap.tick(now: now) } }
        for connection in http2Connections.values { connection.tick(now: now, draining: draining) }
        if let goAway = goAwayAtNanos, now >= goAway {
            goAwayAtNanos = nil
            goAwaySent = true
            for connection in http2Connections.values { connection.goAway() }
        }
        for connection in waitingForHead.values where connection.headDeadlineNanos <= now {
            waitingForHead[ObjectIdentifier(connection)] = nil
            counters.add(.headTimeouts)
            connection.headTimedOut()
        }
    }
}

extension ServerConfig {
    /// The bounds of one loop's taps (the pair table's bytes are shared out among the loops).
    var tapLimits: TapLimits {
        TapLimits(maxSubscribers: maxSubscribers, pairWindowNanos: pairWindowMillis * 1_000_000,
                  pairTableSize: pairTableSize, pairTableBytes: pairTableBytes / max(1, threads))
    }

    var mergeSettings: MergeSettings {
        MergeSettings(windowNanos: mergeWindowMillis * 1_000_000, windowEntries: mergeWindowEntries,
                      pairWindowNanos: pairWindowMillis * 1_000_000, pairTableSize: pairTableSize,
                      pairTableBytes: pairTableBytes / max(1, threads))
    }
}
