#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 client for `GET /tap`: sends the request and hands out the body's
/// lines as they arrive (chunked or not). The CLI's only network code.
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

    let host: String
    let port: UInt16
    let token: String?

    /// Parses `http://HOST:PORT` (port defaults to 80).
    init?(server: String, token: String?) {
        guard server.hasPrefix("http://") else { return nil }
        var rest = server.dropFirst("http://".count)
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        var hostPart = String(rest)
        var port: UInt16 = 80
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            guard let parsed = UInt16(rest[rest.index(after: colon)...]) else { return nil }
            port = parsed
            hostPart = String(rest[..<colon])
        }
        if hostPart.hasPrefix("[") && hostPart.hasSuffix("]") { hostPart = String(hostPart.dropFirst().dropLast()) }
        guard !hostPart.isEmpty else { return nil }
        host = hostPart
        self.port = port
        self.token = token
    }

    /// Streams `/tap?query`, calling `onLine` for every line until it returns false or the
    /// connection ends (then throws `.lost`).
    func stream(query: String, onLine: (Substring) -> Bool) throws(Failure) {
        let fd = try connect()
        defer { close(fd) }
        var request = "GET /tap\(query.isEmpty ? "" : "?" + query) HTTP/1.1\r\nHost: \(host):\(port)\r\n"
        request += "User-Agent: alstap-tap\r\nAccept: application/x-ndjson\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        request += "\r\n"
        guard sendAll(fd, Array(request.utf8)) else { throw .lost }

        var reader = Reader(fd: fd)
        guard let statusLine = reader.line() else { throw .lost }
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        var chunked = false
        var length: Int?
        while let header = reader.line(), !header.isEmpty {
            let lower = header.lowercased()
            if lower.hasPrefix("transfer-encoding:") && lower.contains("chunked") { chunked = true }
            if lower.hasPrefix("content-length:") { length = Int(lower.dropFirst(15).trimmingCharacters(in: " ")) }
        }
        if status != 200 {
            let body = length.map { reader.bytes($0) } ?? []
            throw .rejected(status: status, body: String(decoding: body, as: UTF8.self)
                .trimmingCharacters(in: "\n "))
        }
        var pending: [UInt8] = []
        while true {
            let data: [UInt8]
            if chunked {
                guard let sizeLine = reader.line(), let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16)
                else { throw .lost }
                if size == 0 { throw .lost }
                data = reader.bytes(size)
                guard data.count == size, reader.line() != nil else { throw .lost }
            } else {
                data = reader.available()
                if data.isEmpty { throw .lost }
            }
            pending += data
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                if !onLine(line[...]) { return }
            }
        }
    }

    private func connect() throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            throw .connect("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(result) }
        var lastError = ECONNREFUSED
        var info: UnsafeMutablePointer<addrinfo>? = first
        while let candidate = info {
            let fd = socket(candidate.pointee.ai_family, candidate.pointee.ai_socktype, candidate.pointee.ai_protocol)
            if fd >= 0 {
                if Glibc.connect(fd, candidate.pointee.ai_addr, candidate.pointee.ai_addrlen) == 0 { return fd }
                lastError = errno
                close(fd)
            }
            info = candidate.pointee.ai_next
        }
        throw .connect("cannot connect to \(host):\(port): \(String(cString: strerror(lastError)))")
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno == EINTR { continue }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    /// Buffered reads from the socket.
    private struct Reader {
        let fd: Int32
        var buffer: [UInt8] = []
        var position = 0

        init(fd: Int32) { self.fd = fd }

        mutating func fill() -> Bool {
            if position > 0 {
                buffer.removeFirst(position)
                position = 0
            }
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { return false }
                buffer += chunk[..<count]
                return true
            }
        }

        /// A CRLF- or LF-terminated line without its ending; nil at EOF.
        mutating func line() -> String? {
            while true {
                if let newline = buffer[position...].firstIndex(of: UInt8(ascii: "\n")) {
                    var end = newline
                    if end > position && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                    let line = String(decoding: buffer[position..<end], as: UTF8.self)
                    position = newline + 1
                    return line
                }
                if !fill() { return nil }
            }
        }

        mutating func bytes(_ count: Int) -> [UInt8] {
            while buffer.count - position < count { if !fill() { break } }
            let take = min(count, buffer.count - position)
            defer { position += take }
            return Array(buffer[position..<(position + take)])
        }

        mutating func available() -> [UInt8] {
            if position == buffer.count && !fill() { return [] }
            defer { position = buffer.count }
            return Array(buffer[position...])
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
