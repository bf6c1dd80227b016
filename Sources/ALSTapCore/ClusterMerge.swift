import ALSTapALS
import ALSTapFilter
import ALSTapFormats
import ALSTapMetrics
import HeapModule

/// How a cluster tap merges its replicas' streams.
public struct MergeSettings: Sendable {
    /// Entries wait up to this long to be ordered by start time...
    public var windowNanos: UInt64
    /// ...and at most this many wait (Hubble Relay's defaults: 1 s, 100).
    public var windowEntries: Int
    public var pairWindowNanos: UInt64
    public var pairTableSize: Int
    public var pairTableBytes: Int

    public init(windowNanos: UInt64, windowEntries: Int, pairWindowNanos: UInt64, pairTableSize: Int, pairTableBytes: Int) {
        self.windowNanos = windowNanos
        self.windowEntries = windowEntries
        self.pairWindowNanos = pairWindowNanos
        self.pairTableSize = pairTableSize
        self.pairTableBytes = pairTableBytes
    }
}

/// The logic of a `scope=cluster` tap, without sockets: which replicas to read (and when to
/// retry one), their entries ordered by start time within a bounded window (as Hubble Relay
/// does), `last=K` gathered across replicas, pairing when asked, and a notice when a replica goes
/// or comes back. A replica's stream that broke resumes with what that replica received from
/// then on (`since=`), so a replica that restarts loses none of the entries it counted meanwhile,
/// and none comes twice. The caller opens and closes the replicas' streams as the returned
/// actions say and reports what happens on them. Monotonic time comes with every call, wall
/// time from the injected clock. Loop-confined.
public final class ClusterMerge<Peer: Hashable & CustomStringConvertible> {
    /// What the caller does for the merge.
    public enum Action: Equatable {
        /// Start reading `target` (a `/tap` request target) from `peer`.
        case open(Peer, target: String)
        /// Stop reading `peer`.
        case close(Peer)
    }

    public static var retryNanos: UInt64 { 2_000_000_000 }
    /// How long the history phase may wait for a replica's replay to end.
    public static var historyNanos: UInt64 { 5_000_000_000 }

    public let subscriber: Subscriber
    /// A `/top?scope=cluster` aggregate: the peers' entries go to it as they come (no order to
    /// keep), and the subscriber gets only the notices and the aggregate's snapshots.
    public let aggregate: (any TapSink)?
    /// What the peers' entries are decoded into: the subscriber's format, and JSON to pair.
    public let formats: FormatSet
    /// Facts order the merge (start times), and with `pair=1` join the halves.
    public let facts: FactsNeed
    private let counters: Counters
    /// Wall-clock µs since the epoch: where a broken stream resumes.
    private let wallClock: () -> Int64
    /// `/tap?scope=local&format=als&<filters>`: what every peer is asked for.
    private let target: String
    private let follow: Bool
    private let settings: MergeSettings
    private let pairer: Pairer?
    private var peers: [Peer: PeerState] = [:]
    private var window = Heap<Waiting>()
    private var arrivals: UInt64 = 0
    private var stopped = false
    /// `last=K`: each replica replays its K most recent matches; they are gathered here until
    /// every replica has said its replay ended, and the K most recent of them all go first.
    private let last: Int
    private var replaying: Set<Peer> = []
    private var history: [Waiting] = []
    private var historyDeadlineNanos: UInt64 = 0
    /// `since=T`: every replica is first asked for what it received from T on.
    private let sinceMicros: Int64?
    /// The replicas there were when the tap opened; one that joins later is asked for all it
    /// received since the tap opened (`startedMicros`), as it is new (a pod that replaced one).
    private let initialPeers: Set<Peer>
    private let startedMicros: Int64
    /// Replicas that left the list, and where their streams would resume should they return
    /// (oldest first; beyond the bound the oldest is forgotten).
    private var departed: [(peer: Peer, resumeMicros: Int64)] = []
    private static var maxDeparted: Int { 1_024 }

    private struct PeerState {
        /// A stream to it is open or opening.
        var reading = false
        var retryAtNanos: UInt64 = 0
        /// A notice said it is down; the next successful connect says it is back.
        var reportedDown = false
        /// With `follow=0`: its stream ended normally and is not reopened.
        var finished = false
        /// Opened before: reconnects ask for what it received since `resumeMicros`, so history
        /// is never repeated.
        var opened = false
        /// The open stream was answered (200) and its `since=` replay, if it asked for one, is in:
        /// from here on, a break resumes from when it happens.
        var connected = false
        /// The open stream asked for a `since=` replay that has not ended yet.
        var resuming = false
        /// Its stream said the replica is shutting down.
        var shutDown = false
        /// When the stream now open (or opening) was asked for (wall-clock µs).
        var askedMicros: Int64 = 0
        /// Where the next stream resumes (wall-clock µs): when the last answered stream ended,
        /// or, if none was ever answered, when the first was asked for.
        var resumeMicros: Int64?
    }

    /// An entry waiting in the ordering window.
    private struct Waiting: Comparable {
        let startMicros: Int64
        let arrival: UInt64
        let arrivedNanos: UInt64
        let batch: EncodedBatch
        let index: Int
        static func < (a: Waiting, b: Waiting) -> Bool { (a.startMicros, a.arrival) < (b.startMicros, b.arrival) }
        static func == (a: Waiting, b: Waiting) -> Bool { a.arrival == b.arrival }
    }

    /// `peers`: the replicas now (history is awaited from these).
    public init(subscriber: Subscriber, query: TapQuery, settings: MergeSettings, counters: Counters,
                peers: [Peer], now: UInt64, wallClock: @escaping () -> Int64, aggregate: (any TapSink)? = nil) {
        self.subscriber = subscriber
        self.wallClock = wallClock
        self.aggregate = aggregate
        self.settings = settings
        self.counters = counters
        follow = query.follow
        var formats = subscriber.needs.formats
        if query.pair {
            formats.insert(.json)
            pairer = Pairer(windowNanos: settings.pairWindowNanos, capacity: settings.pairTableSize,
                            capacityBytes: settings.pairTableBytes, counters: counters)
        } else {
            pairer = nil
        }
        if let aggregate {
            formats = aggregate.needs.formats
            facts = aggregate.needs.facts
        } else {
            // The peers filter (`filterQuery`); the merge needs only what orders and pairs.
            facts = query.pair ? .pairing : .filters
        }
        self.formats = formats
        last = query.pair || aggregate != nil ? 0 : query.last
        sinceMicros = query.pair || aggregate != nil ? nil : query.sinceMicros
        var target = "/tap?scope=local&format=als"
        if !query.filterQuery.isEmpty { target += "&" + query.filterQuery }
        if !query.follow { target += "&follow=0" }
        self.target = target
        initialPeers = Set(peers)
        startedMicros = wallClock()
        if last > 0 {
            replaying = Set(peers)
            historyDeadlineNanos = now + Self.historyNanos
        }
    }

    /// Keeps the peer set current (`current`: the replicas now), retries peers that are down,
    /// releases what waited long enough; ends a `follow=0` tap once every peer has finished.
    public func tick(now: UInt64, current: [Peer]) -> [Action] {
        guard !stopped else { return [] }
        let actions = refreshPeers(now: now, current: current)
        release(now: now)
        if let records = pairer?.expire(now: now) { offer(records) }
        if !follow && !peers.isEmpty && peers.values.allSatisfy(\.finished) {
            release(now: now, all: true)
            if let records = pairer?.expire(now: now, all: true) { offer(records) }
            subscriber.finish(notice: nil)
        }
        if subscriber.hasData || subscriber.isFinishing { subscriber.transport?.subscriberHasData() }
        return actions
    }

    /// The tap ended: every stream it reads is to be closed.
    public func stop() -> [Action] {
        stopped = true
        defer { peers.removeAll() }
        return peers.filter(\.value.reading).map { .close($0.key) }
    }

    // MARK: From the peers

    public func received(_ batch: EncodedBatch, from peer: Peer, now: UInt64) {
        if let pairer {
            if let records = pairer.add(batch, now: now) { offer(records) }
        } else if let aggregate {
            aggregate.offer(batch)
        } else if let facts = batch.facts {
            let isHistory = replaying.contains(peer)
            for index in 0..<batch.entryCount {
                arrivals += 1
                let waiting = Waiting(startMicros: facts.facts[index].startMicros, arrival: arrivals, arrivedNanos: now,
                                      batch: batch, index: index)
                if isHistory { history.append(waiting) } else { window.insert(waiting) }
            }
            release(now: now)
        }
        subscriber.deliveryEnded()
    }

    /// Its stream was answered with 200: a peer reported down is back.
    public func peerConnected(_ peer: Peer) {
        if peers[peer]?.resuming == false { peers[peer]?.connected = true }
        guard peers[peer]?.reportedDown == true else { return }
        peers[peer]?.reportedDown = false
        notice(peer, "connected")
    }

    /// A peer's own notice: the end of its replay, or its lost counts (which become this
    /// subscriber's). Its shutdown shows when its stream ends.
    public func peerNotice(_ notice: Notice, from peer: Peer) {
        switch notice {
        case .replayed:
            if peers[peer]?.resuming == true {
                peers[peer]?.resuming = false
                peers[peer]?.connected = true
            }
            historyEnded(for: peer)
        case .lost(let count, let reason):
            (aggregate ?? subscriber).noteLost(count, reason)
            subscriber.deliveryEnded()
        case .shutdown: peers[peer]?.shutDown = true
        case .peer: break
        }
    }

    /// Its stream ended: normally (`failure` nil), or why not. Reopened after a while unless a
    /// `follow=0` stream ended normally.
    public func peerClosed(_ peer: Peer, failure: String?, now: UInt64) {
        guard !stopped, var state = peers[peer], state.reading else { return }
        state.reading = false
        state.finished = !follow && failure == nil
        if state.connected {
            state.resumeMicros = wallClock()
        } else if state.resumeMicros == nil {
            state.resumeMicros = state.askedMicros
        }
        let reason = state.shutDown ? "shut down" : failure ?? "stream ended"
        state.connected = false
        state.resuming = false
        state.shutDown = false
        peers[peer] = state
        historyEnded(for: peer)
        if !state.finished { peerDown(peer, reason, now: now) }
    }

    // MARK: Helpers

    /// Pair records: to the aggregate, or the subscriber.
    private func offer(_ records: EncodedBatch) {
        (aggregate ?? subscriber).offer(records)
    }

    /// Counted, its replay no longer awaited, retried later, and said once until it is back.
    private func peerDown(_ peer: Peer, _ reason: String, now: UInt64) {
        counters.add(.peerStreamsFailed)
        historyEnded(for: peer)
        peers[peer]?.retryAtNanos = now + Self.retryNanos
        guard peers[peer]?.reportedDown == false else { return }
        peers[peer]?.reportedDown = true
        notice(peer, "\(reason); retrying every \(Self.retryNanos / 1_000_000_000) s")
    }

    /// Once every replica's replay is in (or the wait is over): the `last` most recent of them
    /// all, oldest first, ahead of anything live.
    private func historyEnded(for peer: Peer?) {
        if let peer {
            guard replaying.remove(peer) != nil else { return }
        } else {
            replaying.removeAll()
        }
        guard replaying.isEmpty, last > 0 else { return }
        history.sort()
        for waiting in history.suffix(last) {
            subscriber.offer(waiting.batch, entries: waiting.index..<(waiting.index + 1), decodedAt: 0)
        }
        history = []
    }

    private func refreshPeers(now: UInt64, current: [Peer]) -> [Action] {
        var actions: [Action] = []
        for peer in peers.keys where !current.contains(peer) {
            let state = peers.removeValue(forKey: peer)
            if state?.reading == true { actions.append(.close(peer)) }
            if departed.count >= Self.maxDeparted { departed.removeFirst() }
            departed.append((peer, state?.connected == true ? wallClock() : state?.resumeMicros ?? startedMicros))
            notice(peer, "left the peer list")
            historyEnded(for: peer)
        }
        if !replaying.isEmpty && now >= historyDeadlineNanos { historyEnded(for: nil) }
        for peer in current where peers[peer] == nil {
            let joined = min(sinceMicros ?? .max, startedMicros)
            let returning = departed.firstIndex { $0.peer == peer }.map { departed.remove(at: $0).resumeMicros }
            peers[peer] = PeerState(resumeMicros: returning ?? (initialPeers.contains(peer) ? sinceMicros : joined))
        }
        for (peer, state) in peers where !state.reading && !state.finished && now >= state.retryAtNanos {
            let withHistory = !state.opened && replaying.contains(peer)
            peers[peer]?.opened = true
            peers[peer]?.reading = true
            peers[peer]?.askedMicros = wallClock()
            var suffix = withHistory ? "&last=\(last)" : ""
            if let resume = state.resumeMicros { suffix += "&since=" + TapQuery.sinceText(resume) }
            peers[peer]?.resuming = state.resumeMicros != nil
            actions.append(.open(peer, target: target + suffix))
        }
        return actions
    }

    /// Emits, oldest start time first, what overflows the window or waited its full length.
    private func release(now: UInt64, all: Bool = false) {
        // Live entries wait behind the history (bounded: a flood ends the wait).
        if !replaying.isEmpty {
            guard all || window.count > 100 * max(settings.windowEntries, 1) else { return }
            historyEnded(for: nil)
        }
        while let oldest = window.min,
              all || window.count > settings.windowEntries || now &- oldest.arrivedNanos >= settings.windowNanos {
            _ = window.removeMin()
            subscriber.offer(oldest.batch, entries: oldest.index..<(oldest.index + 1), decodedAt: oldest.batch.decodedAtNanos)
        }
    }

    /// A peer's words (its rejection body, say) are data: `Notice` escapes them.
    private func notice(_ peer: Peer, _ message: String) {
        subscriber.enqueueNotice(.peer(peer.description, message: message))
        subscriber.transport?.subscriberHasData()
    }
}
