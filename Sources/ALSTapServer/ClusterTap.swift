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

    let subscriber: Subscriber
    private unowned let context: LoopContext
    private let directory: PeerDirectory
    private let request: String
    /// What the peers' entries are decoded into: the subscriber's format, and JSON to pair.
    let formats: FormatSet
    private let follow: Bool
    private let windowNanos: UInt64
    private let windowEntries: Int
    private let pairer: Pairer?
    private var peers: [ListenAddress: Peer] = [:]
    private var window = Heap<Waiting>()
    private var arrivals: UInt64 = 0
    private var stopped = false

    private struct Peer {
        var tap: PeerTap?
        var retryAtNanos: UInt64 = 0
        /// A notice said it is down; the next successful connect says it is back.
        var reportedDown = false
        /// With `follow=0`: its stream ended normally and is not reopened.
        var finished = false
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
                            counters: context.counters)
        } else {
            pairer = nil
        }
        self.formats = formats
        var target = "/tap?scope=local&format=als"
        if !query.filterQuery.isEmpty { target += "&" + query.filterQuery }
        if query.last > 0 && !query.pair { target += "&last=\(query.last)" }
        if !query.follow { target += "&follow=0" }
        var head = "GET \(target) HTTP/1.1\r\nUser-Agent: alstap-peer\r\n"
        if let token = config.tapToken { head += "Authorization: Bearer \(token)\r\n" }
        request = head
        tick(now: monotonicNanos())
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

    func received(_ batch: EncodedBatch) {
        let now = monotonicNanos()
        if let pairer {
            if let records = pairer.add(batch, now: now) { subscriber.offer(records) }
        } else if let facts = batch.facts {
            for index in 0..<batch.entryCount {
                arrivals += 1
                window.insert(Waiting(startMicros: facts.facts[index].startMicros, arrival: arrivals, arrivedNanos: now,
                                      batch: batch, index: index))
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

    /// A peer's own notice: its lost counts become this subscriber's; its shutdown is noted
    /// when its stream ends.
    func peerNotice(_ json: String) {
        guard json.contains("\"type\":\"lost\""), let count = Self.number(after: "\"count\":", in: json) else { return }
        subscriber.noteLost(count, json.contains("\"reason\":\"rate\"") ? .rate : .slow)
    }

    func peerClosed(_ tap: PeerTap) {
        guard !stopped, var peer = peers[tap.address], peer.tap === tap else { return }
        peer.tap = nil
        let reason = tap.failure ?? "stream ended"
        if !follow && reason == "stream ended" {
            peer.finished = true
        } else {
            peer.retryAtNanos = monotonicNanos() + Self.retryNanos
            if !peer.reportedDown {
                peer.reportedDown = true
                notice(tap.address, "\(reason); retrying every \(Self.retryNanos / 1_000_000_000) s")
            }
        }
        peers[tap.address] = peer
    }

    // MARK: Helpers

    private func refreshPeers(now: UInt64) {
        let current = directory.addresses
        for address in peers.keys where !current.contains(address) {
            peers.removeValue(forKey: address)?.tap?.close()
            notice(address, "left the peer list")
        }
        for address in current where peers[address] == nil { peers[address] = Peer() }
        for (address, peer) in peers where peer.tap == nil && !peer.finished && now >= peer.retryAtNanos {
            let head = request + "Host: \(address)\r\n\r\n"
            do {
                peers[address]?.tap = try PeerTap.open(address, request: Array(head.utf8), owner: self, context: context)
            } catch {
                peers[address]?.retryAtNanos = now + Self.retryNanos
                if !peer.reportedDown {
                    peers[address]?.reportedDown = true
                    notice(address, "\(error); retrying every \(Self.retryNanos / 1_000_000_000) s")
                }
            }
        }
    }

    /// Emits, oldest start time first, what overflows the window or waited its full length.
    private func release(now: UInt64, all: Bool = false) {
        while let oldest = window.min,
              all || window.count > windowEntries || now &- oldest.arrivedNanos >= windowNanos {
            _ = window.removeMin()
            subscriber.offer(oldest.batch, entries: oldest.index..<(oldest.index + 1), decodedAt: oldest.batch.decodedAtNanos)
        }
    }

    private func notice(_ peer: ListenAddress, _ message: String) {
        var escaped = ""
        for character in message {
            if character == "\\" || character == "\"" { escaped.append("\\") }
            escaped.append(character.isASCII && character.asciiValue! < 0x20 ? " " : character)
        }
        subscriber.enqueueNotice(subscriber.notice(
            json: "{\"type\":\"notice\",\"peer\":\"\(peer)\",\"message\":\"\(escaped)\"}",
            text: "# peer \(peer): \(message)"))
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
