import ALSTapFilter
import ALSTapSystem
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// `alstap top` on a terminal: the full-screen view, redrawn on every snapshot, key and resize.
/// One thread polls the keyboard, the resize pipe and the `/top` stream; a `b` reopens the
/// stream with the new grouping; a lost server is retried with the tap's backoff while the last
/// snapshot stays on screen.
struct TopLive {
    /// How the view ended.
    enum Outcome {
        case quit
        /// The server refused the query (HTTP status, its message).
        case rejected(Int, String)
    }

    let client: TapClient
    let server: String
    let color: Bool
    /// The `/top` query for a grouping.
    let query: (TopGrouping) -> String
    var controls: TopControls

    private var stream: TapClient.Stream?
    private var snapshot: TopLine?
    private var status: String?
    private var backoff = TapClient.Backoff()
    /// When to connect next (monotonic ns), while there is no stream.
    private var retryAt: UInt64 = 0
    private var size = (width: 80, height: 24)

    init(client: TapClient, server: String, color: Bool, controls: TopControls,
         query: @escaping (TopGrouping) -> String) {
        self.client = client
        self.server = server
        self.color = color
        self.controls = controls
        self.query = query
    }

    mutating func run() -> Outcome {
        Terminal.enter()
        defer { Terminal.leave() }
        size = Terminal.size() ?? size
        let decoder = JSONDecoder()
        var keys = [UInt8](repeating: 0, count: 256)
        while true {
            if stream == nil && monotonicNanos() >= retryAt { connect() }
            draw()
            var fds = [pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: Terminal.resizes, events: Int16(POLLIN), revents: 0)]
            if let stream { fds.append(pollfd(fd: stream.fd, events: Int16(POLLIN), revents: 0)) }
            let now = monotonicNanos()
            let timeout = stream != nil ? -1 : Int32(clamping: (retryAt > now ? retryAt - now : 0) / 1_000_000 + 1)
            guard poll(&fds, nfds_t(fds.count), timeout) > 0 else { continue }  // EINTR (a signal), or time to retry
            if fds[1].revents != 0 {
                Terminal.drainResizes()
                size = Terminal.size() ?? size
            }
            if fds[0].revents != 0 {
                let count = Glibc.read(STDIN_FILENO, &keys, keys.count)
                guard count > 0 else { return .quit }  // the terminal is gone
                for key in keys[..<count] {
                    switch controls.press(key) {
                    case .quit: return .quit
                    case .regroup:
                        stream = nil
                        retryAt = 0
                        backoff.reset()
                    case .redraw, .none: break
                    }
                }
            }
            if fds.count > 2, fds[2].revents != 0, let stream {
                do throws(TapClient.Failure) {
                    for line in try stream.read() {
                        guard let decoded = try? decoder.decode(TopLine.self, from: Data(line.utf8)) else { continue }
                        if decoded.type == "top" {
                            snapshot = decoded
                            status = nil
                            backoff.reset()
                        } else if decoded.type == "shutdown" {
                            status = "the server is shutting down"
                        }
                    }
                    if let end = stream.end { throw end }
                } catch .rejected(let code, let body) {
                    return .rejected(code, body)
                } catch {
                    lost(error)
                }
            }
        }
    }

    private mutating func connect() {
        do {
            stream = try client.open(path: "/top", query: query(controls.by))
        } catch {
            lost(error)
        }
    }

    /// The stream is gone: say so, and retry after the backoff.
    private mutating func lost(_ error: TapClient.Failure) {
        stream = nil
        status = "\(error); reconnecting in \(backoff.delay)s"
        retryAt = monotonicNanos() + UInt64(backoff.next() * 1e9)
    }

    private func draw() {
        let screen = TopScreen(width: size.width, height: size.height, color: color)
        let lines = screen.lines(server: server, status: status, snapshot: snapshot, controls: controls)
        Terminal.write(TopScreen.frame(lines))
    }
}
