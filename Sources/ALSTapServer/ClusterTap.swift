import ALSTapALS
import ALSTapCore
import ALSTapFilter
import ALSTapFormats
import ALSTapSystem

/// The sockets of a `scope=cluster` subscriber: it reads every peer's `/tap` with the same
/// filters pushed down (`scope=local&format=als`) through a `PeerTap` each, as its
/// `ClusterMerge` (the logic: order, history, retries, notices) says. Loop-confined.
final class ClusterTap {
    let subscriber: Subscriber
    private unowned let context: LoopContext
    private let directory: PeerDirectory
    private let merge: ClusterMerge<ListenAddress>
    private var streams: [ListenAddress: PeerTap] = [:]

    init(subscriber: Subscriber, query: TapQuery, context: LoopContext, directory: PeerDirectory,
         aggregate: (any TapSink)? = nil) {
        self.subscriber = subscriber
        self.context = context
        self.directory = directory
        let now = monotonicNanos()
        merge = ClusterMerge(subscriber: subscriber, query: query, settings: context.config.mergeSettings,
                             counters: context.counters, peers: directory.addresses, now: now, wallClock: wallClockMicros,
                             aggregate: aggregate)
        tick(now: now)
    }

    /// What the peers' entries are decoded into.
    var formats: FormatSet { merge.formats }
    var facts: FactsNeed { merge.facts }

    func tick(now: UInt64) {
        perform(merge.tick(now: now, current: directory.addresses), now: now)
    }

    func stop() {
        perform(merge.stop(), now: monotonicNanos())
    }

    private func perform(_ actions: [ClusterMerge<ListenAddress>.Action], now: UInt64) {
        for action in actions {
            switch action {
            case .close(let peer):
                streams.removeValue(forKey: peer)?.close()
            case .open(let peer, let target):
                var head = "GET \(target) HTTP/1.1\r\nHost: \(peer)\r\nUser-Agent: alstap-peer\r\n"
                if let token = context.config.tapToken { head += "Authorization: Bearer \(token)\r\n" }
                head += "\r\n"
                do {
                    streams[peer] = try PeerTap.open(peer, request: Array(head.utf8), owner: self, context: context)
                } catch {
                    merge.peerClosed(peer, failure: "\(error)", now: now)
                }
            }
        }
    }

    // MARK: From the peers' streams

    func received(_ batch: EncodedBatch, from tap: PeerTap) {
        guard streams[tap.address] === tap else { return }
        merge.received(batch, from: tap.address, now: monotonicNanos())
    }

    func peerConnected(_ tap: PeerTap) {
        guard streams[tap.address] === tap else { return }
        merge.peerConnected(tap.address)
    }

    /// A peer's notice frame: its JSON is the peer's bytes, read by `Notice`'s parser.
    func peerNotice(_ json: String, from tap: PeerTap) {
        guard streams[tap.address] === tap, let notice = Notice(json: json) else { return }
        merge.peerNotice(notice, from: tap.address)
    }

    func peerClosed(_ tap: PeerTap) {
        guard streams[tap.address] === tap else { return }
        streams[tap.address] = nil
        merge.peerClosed(tap.address, failure: tap.failure, now: monotonicNanos())
    }
}
