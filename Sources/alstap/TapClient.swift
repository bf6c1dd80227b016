import ALSTapSystem
#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 client for `GET /tap`: sends the request and hands out the body's
/// lines as they arrive. The CLI's only network code; `TapResponse` reads what comes back.
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

    /// Streams `/tap?query`, calling `onLine` for every line until it returns false or the
    /// response ends (then throws `.lost`, or `.rejected` for a status other than 200).
    func stream(query: String, onLine: (Substring) -> Bool) throws(Failure) {
        let fd = try connect()
        defer { Syscalls.close(fd) }
        try sendAll(fd, Array(request(query: query).utf8))
        var response = TapResponse()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 1)
        defer { buffer.deallocate() }
        while true {
            guard case .processed(let count)? = try? Syscalls.read(fd, into: buffer) else { throw response.closed() }
            for line in response.feed(UnsafeRawBufferPointer(rebasing: buffer[..<count])) {
                if !onLine(line[...]) { return }
            }
            if let end = response.end { throw end }
        }
    }

    func request(query: String) -> String {
        var request = "GET /tap\(query.isEmpty ? "" : "?" + query) HTTP/1.1\r\nHost: \(server)\r\n"
        request += "User-Agent: alstap-tap\r\nAccept: application/x-ndjson\r\n"
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
