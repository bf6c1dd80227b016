import ALSTapALS
import ALSTapFilter
import ALSTapSystem
import HeapModule

/// The source of a `scope=cluster` subscriber: it reads every peer's `/tap` with the same
/// filters pushed down (`scope=local&format=als`), decodes their entries as if Envoy had sent
/// them here, orders them by start time within a bounded window (as Hubble Relay does), pairs
/// them when asked, and queues the result to the subscriber. An unreachable peer gets a notice
/// and is retried; the others keep flowing. Loop-confined.
final class ClusterTap {
    static let retryNanos: UInt64 = 2_000_000_000
    /// The notice a replica sends a peer after its `last=K` replay.
    static let replayedNotice = "{\"type\":\"replayed\"}"
    /// How long the history phase may wait for a replica's replay to end.
    static let historyNanos: UInt64 = 5_000_000_000

    let subscriber: Subscriber
    private unowned let context: LoopContext
    private let directory: PeerDirectory
    /// `/tap?scope=local&format=als&<filters>`: what every peer is asked for.
    private let request: String
    /// What the peers' entries are decoded into: the subscriber's format, and JSON to pair.
    let formats: FormatSet
    /// Facts order the merge (start times), and with `pair=1` join the halves.
    let facts: FactsNeed
    private let follow: Bool
    private let windowNanos: UInt64
    private let windowEntries: Int
    private let pairer: Pairer?
    private var peers: [ListenAddress: Peer] = [:]
    private var window = Heap<Waiting>()
    private var arrivals: UInt64 = 0
    private var stopped = false
    /// `last=K`: each replica replays its K most recent matches; they are gathered here until
    /// every replica has said its replay ended, and the K most recent of them all go first.
    private let last: Int
    private var replaying: Set<ListenAddress> = []
    private var history: [Waiting] = []
    private var historyDeadlineNanos: UInt64 = 0

    private struct Peer {
        var tap: PeerTap?
        var retryAtNanos: UInt64 = 0
        /// A notice said it is down; the next successful connect says it is back.
        var reportedDown = false
        /// With `follow=0`: its stream ended normally and is not reopened.
        var finished = false
        /// Opened before: reconnects ask for live entries only, so history is never repeated.
        var opened = false
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

    init(subscriber: Subscriber, query: TapQuery, context: LoopContext, directory: PeerDirectory) {
        self.subscriber = subscriber
        self.context = context
        self.directory = directory
        let config = context.config
        follow = query.follow
        windowNanos = config.mergeWindowMillis * 1_000_000
        windowEntries = config.mergeWindowEntries
        var formats = FormatSet(subscriber.format)
        if query.pair {
            formats.insert(.json)
            pairer = Pairer(windowNanos: config.pairWindowMillis * 1_000_000, capacity: config.pairTableSize,
                            capacityBytes: config.pairTableBytes / max(1, config.threads),
                            counters: context.counters)
        } else {
            pairer = nil
        }
        self.formats = formats
        facts = query.pair ? .pairing : .filters
        last = query.pair ? 0 : query.last
        var target = "/tap?scope=local&format=als"
        if !query.filterQuery.isEmpty { target += "&" + query.filterQuery }
        if !query.follow { target += "&follow=0" }
        request = target
        let now = monotonicNanos()
        if last > 0 {
            replaying = Set(directory.addresses)
            historyDeadlineNanos = now + Self.historyNanos
        }
        tick(now: now)
    }

    /// Keeps the peer set current, retries peers that are down, releases what waited long
    /// enough; ends a `follow=0` tap once every peer has finished.
    func tick(now: UInt64) {
        guard !stopped else { return }
        refreshPeers(now: now)
        release(now: now)
        if let records = pairer?.expire(now: now) { subscriber.offer(records) }
        if !follow && !peers.isEmpty && peers.values.allSatisfy(\.finished) {
            release(now: now, all: true)
            if let records = pairer?.expire(now: .max) { subscriber.offer(records) }
            subscriber.finish(notice: nil)
        }
        if subscriber.hasData || subscriber.isFinishing { subscriber.transport?.subscriberHasData() }
    }

    func stop() {
        stopped = true
        for peer in peers.values { peer.tap?.close() }
        peers.removeAll()
    }

    // MARK: From the peers

    func received(_ batch: EncodedBatch, from peer: ListenAddress) {
        let now = monotonicNanos()
        if let pairer {
            if let records = pairer.add(batch, now: now) { subscriber.offer(records) }
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
        if subscriber.hasData { subscriber.transport?.subscriberHasData() }
    }

    func peerConnected(_ tap: PeerTap) {
        guard peers[tap.address]?.reportedDown == true else { return }
        peers[tap.address]?.reportedDown = false
        notice(tap.address, "connected")
    }

    /// A peer's own notice: the end of its replay, or its lost counts (which become this
    /// subscriber's). Its shutdown shows when its stream ends.
    func peerNotice(_ json: String, from peer: ListenAddress) {
        if json == Self.replayedNotice {
            historyEnded(for: peer)
        } else if json.contains("\"type\":\"lost\""), let count = Self.number(after: "\"count\":", in: json) {
            subscriber.noteLost(count, json.contains("\"reason\":\"rate\"") ? .rate : .slow)
        }
    }

    /// Once every replica's replay is in (or the wait is over): the `last` most recent of them
    /// all, oldest first, ahead of anything live.
    private func historyEnded(for peer: ListenAddress?) {
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

    func peerClosed(_ tap: PeerTap) {
        guard !stopped, var peer = peers[tap.address], peer.tap === tap else { return }
        peer.tap = nil
        let reason = tap.failure ?? "stream ended"
        peer.finished = !follow && reason == "stream ended"
        peers[tap.address] = peer
        historyEnded(for: tap.address)
        if !peer.finished { peerDown(tap.address, reason, now: monotonicNanos()) }
    }

    /// Counted, its replay no longer awaited, retried later, and said once until it is back.
    private func peerDown(_ address: ListenAddress, _ reason: String, now: UInt64) {
        context.counters.add(.peerStreamsFailed)
        historyEnded(for: address)
        peers[address]?.retryAtNanos = now + Self.retryNanos
        guard peers[address]?.reportedDown == false else { return }
        peers[address]?.reportedDown = true
        notice(address, "\(reason); retrying every \(Self.retryNanos / 1_000_000_000) s")
    }

    // MARK: Helpers

    private func refreshPeers(now: UInt64) {
        let current = directory.addresses
        for address in peers.keys where !current.contains(address) {
            peers.removeValue(forKey: address)?.tap?.close()
            notice(address, "left the peer list")
            historyEnded(for: address)
        }
        if !replaying.isEmpty && now >= historyDeadlineNanos { historyEnded(for: nil) }
        for address in current where peers[address] == nil { peers[address] = Peer() }
        for (address, peer) in peers where peer.tap == nil && !peer.finished && now >= peer.retryAtNanos {
            let withHistory = !peer.opened && replaying.contains(address)
            peers[address]?.opened = true
            var head = "GET \(request)\(withHistory ? "&last=\(last)" : "") HTTP/1.1\r\nHost: \(address)\r\n"
            head += "User-Agent: alstap-peer\r\n"
            if let token = context.config.tapToken { head += "Authorization: Bearer \(token)\r\n" }
            head += "\r\n"
            do {
                peers[address]?.tap = try PeerTap.open(address, request: Array(head.utf8), owner: self, context: context)
            } catch {
                peerDown(address, "\(error)", now: now)
            }
        }
    }

    /// Emits, oldest start time first, what overflows the window or waited its full length.
    private func release(now: UInt64, all: Bool = false) {
        // Live entries wait behind the history (bounded: a flood ends the wait).
        if !replaying.isEmpty {
            guard all || window.count > 100 * max(windowEntries, 1) else { return }
            historyEnded(for: nil)
        }
        while let oldest = window.min,
              all || window.count > windowEntries || now &- oldest.arrivedNanos >= windowNanos {
            _ = window.removeMin()
            subscriber.offer(oldest.batch, entries: oldest.index..<(oldest.index + 1), decodedAt: oldest.batch.decodedAtNanos)
        }
    }

    /// A peer's words (its rejection body, say) are data: escaped like entries' strings.
    private func notice(_ peer: ListenAddress, _ message: String) {
        func escaped(_ mode: EscapeMode) -> String {
            let writer = ByteWriter(capacity: message.utf8.count + 16)
            var text = message
            text.withUTF8 { writer.appendEscaped($0, mode: mode) }
            return String(decoding: writer.bytes, as: UTF8.self)
        }
        subscriber.enqueueNotice(subscriber.notice("notice",
            json: "{\"type\":\"notice\",\"peer\":\"\(peer)\",\"message\":\"\(escaped(.json))\"}",
            text: "# peer \(peer): \(escaped(.text))"))
        subscriber.transport?.subscriberHasData()
    }

    private static func number(after key: String, in json: String) -> Int? {
        let text = Array(json.utf8)
        let pattern = Array(key.utf8)
        guard text.count >= pattern.count,
              let start = (0...(text.count - pattern.count)).first(where: { text[$0..<($0 + pattern.count)].elementsEqual(pattern) })
        else { return nil }
        let digits = text[(start + pattern.count)...].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        return Int(String(decoding: digits, as: UTF8.self))
    }
}
