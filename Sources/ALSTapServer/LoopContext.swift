import ALSTapALS
import ALSTapFilter
import ALSTapSystem
import Logging

/// Something with a deadline for finishing its request head (or HTTP/2 preface).
protocol HeadDeadline: AnyObject {
    var headDeadlineNanos: UInt64 { get }
    func headTimedOut()
}

/// Per-loop state shared by the loop's connections: decoder, buffers, subscribers.
///
/// `@unchecked Sendable`: it is created on the main thread before the loop starts and then
/// used only by that loop's thread (everything arrives through `EventLoop` callbacks).
final class LoopContext: @unchecked Sendable {
    let loop: EventLoop
    let config: ServerConfig
    let hub: Hub
    let counters: Counters
    let logger: Logger
    let decoder: ALSDecoder
    /// Socket reads land here; protocol code consumes the bytes before the next read.
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
    /// Output gathered before one write (HTTP/2 frames).
    let sendScratch = ByteWriter(capacity: 256 * 1024)
    private(set) var subscribers: [ObjectIdentifier: Subscriber] = [:]
    /// Subscribers with a namespace-pinning filter, found per entry (the rest test every entry).
    private let index = SubscriberIndex()
    private var unindexed: [ObjectIdentifier: Subscriber] = [:]
    private var waitingForHead: [ObjectIdentifier: any HeadDeadline] = [:]
    /// Joins both sidecars' entries while this loop has `pair=1` subscribers.
    private var pairer: Pairer?
    private var pairingSubscribers = 0
    /// Where the replicas are, for `scope=cluster` taps (nil without `--peers`).
    let peerDirectory: PeerDirectory?
    /// The sources of this loop's `scope=cluster` subscribers, by subscriber.
    private var clusterTaps: [ObjectIdentifier: ClusterTap] = [:]
    /// `last=K` replays being gathered, by subscriber.
    private var replays: [ObjectIdentifier: ReplayJob] = [:]
    /// Entries decoded again per loop turn for replays, all of them together (and per replay
    /// and turn), and at most 2 ms of it: a few milliseconds of work however many replays wait,
    /// however slow the build (sanitizers) or the machine's phase.
    private static let replayEntriesPerTurn = 2_000
    private static let replayEntriesPerStep = 500
    private static let replayNanosPerTurn: UInt64 = 2_000_000
    /// HTTP/2 connections, for the shutdown notice and GOAWAY.
    private var http2Connections: [ObjectIdentifier: HTTP2Connection] = [:]
    var draining = false
    /// When the final GOAWAY goes out (one tick after the shutdown notice).
    private var goAwayAtNanos: UInt64?

    init(loop: EventLoop, config: ServerConfig, hub: Hub, counters: Counters, logger: Logger,
         peerDirectory: PeerDirectory?) {
        self.loop = loop
        self.peerDirectory = peerDirectory
        self.config = config
        self.hub = hub
        self.counters = counters
        self.logger = logger
        decoder = ALSDecoder(redactedHeaders: config.redactedHeaders, limits: config.decodeLimits)
    }

    deinit { readBuffer.deallocate() }

    var inbox: LoopInbox { hub.inboxes[loop.index] }

    /// The result of asking for a tap: a subscriber to attach, or the answer that refuses it.
    enum TapOpening {
        case opened(Subscriber)
        case refused(HTTPResponse)
    }

    /// Starts a tap for `query`: this replica's entries, or with `scope=cluster` every peer's.
    func openTap(_ query: TapQuery) -> TapOpening {
        let subscriber = Subscriber(format: query.format, filter: query.clusterScope ? nil : query.filter,
                                    maxEntriesPerSecond: query.maxEntriesPerSecond,
                                    pairs: query.pair && !query.clusterScope,
                                    capacityLines: config.subscriberQueueLines, capacityBytes: config.subscriberQueueBytes,
                                    totalCapacityBytes: config.subscribersQueueBytes, counters: counters)
        guard query.clusterScope else {
            return admitSubscriber(subscriber, last: query.last, follow: query.follow)
                ? .opened(subscriber) : .refused(.tooManySubscribers)
        }
        guard let peerDirectory else {
            return .refused(HTTPResponse(400, "Bad Request", "scope=cluster needs alstap serve --peers\n"))
        }
        guard !draining, counters.get(.subscribersActive) < config.maxSubscribers else {
            counters.add(.subscribersRejected)
            return .refused(.tooManySubscribers)
        }
        counters.add(.subscribersActive)
        clusterTaps[ObjectIdentifier(subscriber)] = ClusterTap(subscriber: subscriber, query: query, context: self,
                                                               directory: peerDirectory)
        return .opened(subscriber)
    }

    /// Ends a tap from `openTap` (its client left).
    func closeTap(_ subscriber: Subscriber) {
        if let tap = clusterTaps.removeValue(forKey: ObjectIdentifier(subscriber)) {
            tap.stop()
            counters.subtract(.subscribersActive)
        } else {
            removeSubscriber(subscriber)
        }
        subscriber.release()
    }

    /// Registers a subscriber unless `--max-subscribers` are already there (then counts the
    /// refusal), replays the `last` most recent matching entries into it, and with `follow`
    /// false ends it after them.
    private func admitSubscriber(_ subscriber: Subscriber, last: Int, follow: Bool) -> Bool {
        guard !draining, counters.get(.subscribersActive) < config.maxSubscribers else {
            counters.add(.subscribersRejected)
            return false
        }
        subscribers[ObjectIdentifier(subscriber)] = subscriber
        if SubscriberIndex.accepts(subscriber) {
            index.add(subscriber)
        } else {
            unindexed[ObjectIdentifier(subscriber)] = subscriber
        }
        hub.subscriberAdded(format: subscriber.format, filtered: subscriber.filter != nil, pairs: subscriber.pairs,
                            loop: loop.index)
        if subscriber.pairs {
            pairingSubscribers += 1
            if pairer == nil {
                pairer = Pairer(windowNanos: config.pairWindowMillis * 1_000_000, capacity: config.pairTableSize,
                            capacityBytes: config.pairTableBytes / max(1, config.threads),
                                counters: counters)
            }
        }
        // Registered first, so no live batch published from now on is missed; the ring's
        // sequence numbers tell which of those the replay covers. The replay itself is gathered
        // over the next loop turns (`stepReplays`).
        if last > 0 && !subscriber.pairs {
            if let job = ReplayJob(subscriber: subscriber, count: last, ring: hub.replayRing, counters: counters) {
                replays[ObjectIdentifier(subscriber)] = job
                loop.wake()
            } else if subscriber.format == .als {
                // A cluster tap reading this replica needs to know where history ends and live begins.
                subscriber.enqueueNotice(subscriber.notice("replayed", json: ClusterTap.replayedNotice, text: ""))
            }
        }
        if !follow { subscriber.finish(notice: nil) }
        return true
    }

    /// Advances the replays a bounded amount; wakes the loop again while some are left.
    func stepReplays() {
        guard !replays.isEmpty else { return }
        var budget = Self.replayEntriesPerTurn
        var done: [ObjectIdentifier] = []
        let start = monotonicNanos()
        for (id, job) in replays where budget > 0 && monotonicNanos() &- start < Self.replayNanosPerTurn {
            let step = job.step(ring: hub.replayRing, decoder: decoder, budget: min(budget, Self.replayEntriesPerStep))
            budget -= max(step.decoded, 1)
            counters.add(.replayEntriesDecoded, step.decoded)
            if step.done { done.append(id) }
        }
        for id in done { replays[id] = nil }
        if !replays.isEmpty { loop.wake() }
    }

    private func removeSubscriber(_ subscriber: Subscriber) {
        guard subscribers.removeValue(forKey: ObjectIdentifier(subscriber)) != nil else { return }
        replays[ObjectIdentifier(subscriber)] = nil  // a replay still gathering is abandoned
        if unindexed.removeValue(forKey: ObjectIdentifier(subscriber)) == nil { index.remove(subscriber) }
        hub.subscriberRemoved(format: subscriber.format, filtered: subscriber.filter != nil, pairs: subscriber.pairs,
                              loop: loop.index)
        if subscriber.pairs {
            pairingSubscribers -= 1
            if pairingSubscribers == 0 { pairer = nil }
        }
    }

    func http2Opened(_ connection: HTTP2Connection) {
        http2Connections[ObjectIdentifier(connection)] = connection
    }

    func http2Closed(_ connection: HTTP2Connection) {
        http2Connections[ObjectIdentifier(connection)] = nil
    }

    /// Shutdown, on this loop: not ready any more, HTTP/2's shutdown notice to every client (the
    /// final GOAWAY follows on a later tick), and a last line to every subscriber.
    func beginShutdown() {
        draining = true
        for connection in http2Connections.values { connection.announceShutdown() }
        goAwayAtNanos = monotonicNanos() + 100_000_000
        for subscriber in subscribers.values { subscriber.finish(notice: subscriber.shutdownNotice) }
        for tap in clusterTaps.values {
            tap.stop()
            tap.subscriber.finish(notice: tap.subscriber.shutdownNotice)
        }
    }

    func watchHead(_ connection: any HeadDeadline) {
        waitingForHead[ObjectIdentifier(connection)] = connection
    }

    func unwatchHead(_ connection: any HeadDeadline) {
        waitingForHead[ObjectIdentifier(connection)] = nil
    }

    /// Offers everything other loops (and this one) published to this loop's subscribers.
    func deliverInbox() {
        let (batches, dropped, tasks) = inbox.drain()
        for task in tasks { task() }
        stepReplays()
        guard !batches.isEmpty || dropped > 0 else { return }
        let now = monotonicNanos()
        let pairs = pairer.map { pairer in batches.compactMap { pairer.add($0, now: now) } } ?? []
        if dropped > 0 { for subscriber in subscribers.values { subscriber.noteLost(dropped, .slow) } }
        for subscriber in unindexed.values {
            for batch in subscriber.pairs ? pairs : batches { subscriber.offer(batch) }
        }
        if !index.isEmpty { for batch in batches { index.dispatch(batch) } }
        for subscriber in subscribers.values where subscriber.hasData { subscriber.transport?.subscriberHasData() }
    }

    /// Hands records whose pairing window ended to the pairing subscribers.
    private func expirePairs(now: UInt64) {
        guard let records = pairer?.expire(now: now) else { return }
        for subscriber in subscribers.values where subscriber.pairs {
            subscriber.offer(records)
            if subscriber.hasData { subscriber.transport?.subscriberHasData() }
        }
    }

    func tick(now: UInt64) {
        counters.add(.staleEvents, loop.takeStaleEvents())
        expirePairs(now: now)
        if !draining { for tap in clusterTaps.values { tap.tick(now: now) } }
        if let goAway = goAwayAtNanos, now >= goAway {
            goAwayAtNanos = nil
            for connection in http2Connections.values { connection.goAway() }
        }
        for connection in waitingForHead.values where connection.headDeadlineNanos <= now {
            waitingForHead[ObjectIdentifier(connection)] = nil
            counters.add(.headTimeouts)
            connection.headTimedOut()
        }
    }
}
