import ALSTapALS
import ALSTapHTTP1
import ALSTapMetrics
import ALSTapSystem

/// One replica's `/tap?scope=local&format=als&...`, read for a cluster-scope tap: the response
/// body is gRPC-framed ALS messages (decoded here as Envoy's are) and notice frames.
/// Loop-confined; counted among the server's connections.
final class PeerTap: Connection {
    let address: ListenAddress
    private unowned let owner: ClusterTap
    private let request: [UInt8]
    private var connected = false
    private var status = 0
    private var rejection: [UInt8] = []
    private var response = HTTP1ResponseReader()
    private var deframer: GRPCDeframer
    private var reporter = Reporter()
    /// Why the stream ended, for the notice (nil: it ended normally).
    private(set) var failure: String?

    /// Starts connecting (the socket turns writable when the connect is done); throws when the
    /// socket cannot even start.
    static func open(_ address: ListenAddress, request: [UInt8], owner: ClusterTap, context: LoopContext) throws(SystemError) -> PeerTap {
        let fd = try Outbound.connect(address)
        let tap = PeerTap(fd: fd, address: address, request: request, owner: owner, context: context)
        do {
            try context.loop.register(fd, handler: tap, events: EventMask.readable | EventMask.peerClosedWriting)
        } catch {
            Syscalls.close(fd)
            throw error
        }
        context.counters.add(.connectionsActive)
        tap.watchWritable(true)  // the connect completes when the socket turns writable
        return tap
    }

    private init(fd: Int32, address: ListenAddress, request: [UInt8], owner: ClusterTap, context: LoopContext) {
        self.address = address
        self.request = request
        self.owner = owner
        deframer = GRPCDeframer(maxMessageBytes: context.config.maxMessageBytes, acceptsNotices: true)
        super.init(fd: fd, role: [], context: context)  // outbound: it serves nothing
    }

    override func writable() {
        guard !connected else { return }
        let error = Outbound.pendingError(fd)
        guard error == 0 else {
            fail(SystemError("connect", errno: error).description)
            return
        }
        connected = true
        write(request)
    }

    override func readable() {
        for _ in 0..<16 {
            guard let bytes = readOnce() else { return }
            do throws(HTTP1ResponseReader.Error) {
                try response.feed(bytes) { event in
                    switch event {
                    case .head(let code):
                        status = code
                        if code == 200 {
                            context.counters.add(.peerStreamsOpened)
                            owner.peerConnected(self)
                        }
                    case .body(let body): self.body(body)
                    }
                }
            } catch {
                fail(error.message)
            }
            if isClosed { return }
        }
    }

    private func body(_ bytes: UnsafeRawBufferPointer) {
        guard !isClosed else { return }
        guard status == 200 else {
            if rejection.count < 512 { rejection += bytes.prefix(512 - rejection.count) }
            return
        }
        do throws(GRPCStatusError) {
            try deframer.feedFrames(bytes) { (isNotice, payload) throws(GRPCStatusError) in
                if isNotice {
                    owner.peerNotice(String(decoding: payload, as: UTF8.self), from: self)
                    return
                }
                let batch = try context.decoder.decode(payload, reporter: &reporter, formats: owner.formats,
                                                       facts: owner.facts, decodedAtNanos: monotonicNanos())
                owner.received(batch, from: self)
            }
        } catch {
            fail("bad stream: \(error.message)")
        }
    }

    private func fail(_ reason: String) {
        if failure == nil { failure = reason }
        close()
    }

    override func closing() {
        if failure == nil && !(connected && (status == 200 || status == 0)) {
            failure = status == 200 || status == 0 ? "unreachable"
                : "answered \(status): \(String(decoding: rejection.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self))"
        }
        owner.peerClosed(self)
    }
}
