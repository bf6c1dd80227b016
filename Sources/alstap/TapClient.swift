import ALSTapHTTP1
import ALSTapSystem
#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 client for `GET /tap` and `GET /top`: sends the request and hands
/// out the body's lines as they arrive. The CLI's only network code; `TapResponse` reads what
/// comes back.
struct TapClient {
    enum Failure: Error, CustomStringConvertible {
        case connect(String)
        case rejected(status: Int, body: String)
        case lost

        var description: String {
            switch self {
            case .connect(let reason): reason
            case .rejected(let status, let body): "server answered \(status): \(body)"
            case .lost: "connection lost"
            }
        }
    }

    /// One open response: its socket (closed with the stream) and what was read of it.
    final class Stream {
        let fd: Int32
        private var response = TapResponse()
        private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 1)

        fileprivate init(fd: Int32) {
            self.fd = fd
        }

        deinit {
            Syscalls.close(fd)
            buffer.deallocate()
        }

        /// Set once the response is over; check it after the lines of each `read`.
        var end: Failure? { response.end }

        /// The lines one read of the socket completes (it blocks until the socket has bytes);
        /// throws when the connection closes.
        func read() throws(Failure) -> [String] {
            guard let count = try readSocket() else { return [] }
            return response.feed(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }

        /// Like `read`, for a body that is not lines (a capture): the body bytes it brought.
        func readRaw() throws(Failure) -> [UInt8] {
            guard let count = try readSocket() else { return [] }
            return response.feedRaw(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }

        /// Bytes read into `buffer`; nil when the receive timeout passed first (`wakeUpEvery`).
        private func readSocket() throws(Failure) -> Int? {
            switch try? Syscalls.read(fd, into: buffer) {
            case .processed(let count)?: return count
            case .wouldBlock?: return nil
            default: throw response.closed()
            }
        }

        /// Reads return empty-handed after this long without bytes (the caller checks its clock).
        func wakeUpEvery(milliseconds: Int) {
            var timeout = timeval(tv_sec: 0, tv_usec: milliseconds * 1000)
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    /// Reconnection delays: 0.5 s, doubled after each failure up to 5 s, back to 0.5 s once lines flow.
    struct Backoff {
        private(set) var delay = 0.5

        mutating func reset() { delay = 0.5 }

        /// The delay to wait before the next attempt (the one after waits longer).
        mutating func next() -> Double {
            defer { delay = min(delay * 2, 5) }
            return delay
        }
    }

    let server: HostPort
    let token: String?

    /// Parses `http://HOST[:PORT][/...]` (port 80 by default).
    init?(server url: String, token: String?) {
        guard url.hasPrefix("http://"),
              let server = HostPort(parsing: String(url.dropFirst("http://".count).prefix { $0 != "/" }), defaultPort: 80)
        else { return nil }
        self.server = server
        self.token = token
    }

    /// `name=value&...`, each value percent-encoded for a query.
    static func query(_ items: [(String, String)]) -> String {
        items.map { "\($0.0)=\(PercentEncoding.encode($0.1, keeping: .queryValue))" }.joined(separator: "&")
    }

    /// Connects and sends `GET path?query`; the response is read from the stream.
    func open(path: String, query: String) throws(Failure) -> Stream {
        let stream = Stream(fd: try connect())
        try sendAll(stream.fd, Array(request(path: path, query: query).utf8))
        return stream
    }

    /// Streams `path?query`, calling `onLine` for every line until it returns false or the
    /// response ends (then throws `.lost`, or `.rejected` for a status other than 200).
    /// With a `deadline` (monotonic seconds) or `shouldStop`, reads wake up every 200 ms to check them.
    func stream(path: String = "/tap", query: String, deadline: Double? = nil, shouldStop: () -> Bool = { false },
                onLine: (Substring) -> Bool) throws(Failure) {
        let stream = try open(path: path, query: query)
        stream.wakeUpEvery(milliseconds: 200)
        while true {
            for line in try stream.read() {
                if !onLine(line[...]) { return }
            }
            if let end = stream.end { throw end }
            if shouldStop() || deadline.map({ monotonicSeconds() >= $0 }) == true { return }
        }
    }

    /// Like `stream`, for a body that is not lines: `onBytes` gets it as it arrives.
    func streamRaw(path: String = "/tap", query: String, deadline: Double? = nil, shouldStop: () -> Bool = { false },
                   onBytes: ([UInt8]) -> Bool) throws(Failure) {
        let stream = try open(path: path, query: query)
        stream.wakeUpEvery(milliseconds: 200)
        while true {
            let bytes = try stream.readRaw()
            if !bytes.isEmpty && !onBytes(bytes) { return }
            if let end = stream.end { throw end }
            if shouldStop() || deadline.map({ monotonicSeconds() >= $0 }) == true { return }
        }
    }

    /// The request head; the User-Agent names the endpoint (`alstap-tap`, `alstap-top`).
    func request(path: String = "/tap", query: String) -> String {
        var request = "GET \(path)\(query.isEmpty ? "" : "?" + query) HTTP/1.1\r\nHost: \(server)\r\n"
        request += "User-Agent: alstap-\(path.dropFirst())\r\nAccept: application/x-ndjson\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        return request + "\r\n"
    }

    /// The first of the server's addresses that accepts.
    private func connect() throws(Failure) -> Int32 {
        let addresses = Outbound.resolve(host: server.host, port: server.port)
        guard !addresses.isEmpty else { throw .connect("cannot resolve \(server.host)") }
        var lastErrno = ECONNREFUSED
        for address in addresses {
            do {
                return try Outbound.connectBlocking(address)
            } catch {
                lastErrno = error.errno
            }
        }
        throw .connect("cannot connect to \(server): \(String(cString: strerror(lastErrno)))")
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { try? Syscalls.write(fd, UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            guard case .processed(let sent)? = result, sent > 0 else { throw .lost }
            offset += sent
        }
    }
}

extension StringProtocol {
    /// Drops leading and trailing characters made only of scalars in `set` (so "\r\n" counts
    /// when "\r" and "\n" are in it, though Swift sees "\r\n" as one Character).
    func trimmingCharacters(in set: String) -> String {
        func isTrimmed(_ character: Character) -> Bool {
            character.unicodeScalars.allSatisfy { set.unicodeScalars.contains($0) }
        }
        var text = self[...]
        while let first = text.first, isTrimmed(first) { text = text.dropFirst() }
        while let last = text.last, isTrimmed(last) { text = text.dropLast() }
        return String(text)
    }
}
