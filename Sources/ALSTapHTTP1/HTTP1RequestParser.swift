/// An HTTP/1.1 request head.
public struct HTTP1RequestHead: Sendable, Equatable {
    public var method: String
    public var target: String
    public var version: String
    /// Header names lowercased, in order.
    public var headers: [(name: String, value: String)]

    public static func == (a: Self, b: Self) -> Bool {
        a.method == b.method && a.target == b.target && a.version == b.version
            && a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }

    /// HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0 closes unless keep-alive.
    public var keepAlive: Bool {
        let connection = header("connection")?.lowercased()
        return version == "HTTP/1.1" ? connection != "close" : connection == "keep-alive"
    }
}

/// The outcome of looking for a complete request head in the bytes received so far.
public enum HTTP1ParseResult: Equatable {
    case incomplete
    /// `consumed` bytes (head and blank line) belong to this request.
    case complete(HTTP1RequestHead, consumed: Int)
    /// The head grew over the limit without ending: answer 431 and close.
    case tooLarge
    case malformed(String)
}

/// Parses HTTP/1.1 request heads (request line and headers). No I/O; bytes in, a head out.
public enum HTTP1RequestParser {
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxHeadBytes: Int) -> HTTP1ParseResult {
        guard let end = headEnd(bytes) else {
            return bytes.count > maxHeadBytes ? .tooLarge : .incomplete
        }
        if end.headLength > maxHeadBytes { return .tooLarge }
        let head = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<end.headLength]), as: UTF8.self)
        // "\r\n" is one Character in Swift, so both line endings are separators.
        var lines = head.split(omittingEmptySubsequences: false) { $0 == "\r\n" || $0 == "\n" }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let requestLine = lines.first else { return .malformed("empty request") }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return .malformed("bad request line")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                return .malformed("bad header line")
            }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces()
            headers.append((name, value))
        }
        let request = HTTP1RequestHead(method: String(parts[0]), target: String(parts[1]), version: String(parts[2]),
                                       headers: headers)
        return .complete(request, consumed: end.consumed)
    }

    /// Finds the blank line ending the head (CRLF CRLF, or bare LF LF from hand-typed requests).
    private static func headEnd(_ bytes: UnsafeRawBufferPointer) -> (headLength: Int, consumed: Int)? {
        let lf = UInt8(ascii: "\n")
        var i = 0
        while i < bytes.count {
            if bytes[i] == lf {
                if i + 1 < bytes.count && bytes[i + 1] == lf { return (i + 1, i + 2) }
                if i + 2 < bytes.count && bytes[i + 1] == UInt8(ascii: "\r") && bytes[i + 2] == lf {
                    return (i + 1, i + 3)
                }
            }
            i += 1
        }
        return nil
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var text = self[...]
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return String(text)
    }
}
