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

/// How a request's body is delimited, from its head alone (RFC 9112 §6.3).
public enum HTTP1BodyFraming: Equatable, Sendable {
    /// No body (or `Content-Length: 0`): the next request starts right after the head.
    case noBody
    /// Exactly this many body bytes (more than zero) follow the head.
    case contentLength(Int)
    /// A `Transfer-Encoding` header, with or without `Content-Length`. alstap takes no
    /// transfer-coded bodies and cannot find where such a request ends: answer 400 and close.
    case transferEncoded
    /// `Content-Length` is not a number, overflows, or has differing values: answer 400 and close.
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
            // RFC 9112 §5.1: no whitespace before the colon (and so no obs-fold line), else 400;
            // a lenient parser here would read `Content-Length : 5` as no body at all.
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                  line.utf8[..<colon].allSatisfy(isTokenByte) else {
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

    /// How the body of a request with this complete head is framed (RFC 9112 §6.3). Pure.
    ///
    /// Any `Transfer-Encoding` wins over `Content-Length` (with both, the framing is faulty:
    /// RFC 9112 §6.1). Several `Content-Length` values, as lines or a comma list, must be one
    /// number repeated (RFC 9110 §8.6); anything but digits is malformed.
    public static func bodyFraming(of head: HTTP1RequestHead) -> HTTP1BodyFraming {
        if head.headers.contains(where: { $0.name == "transfer-encoding" }) { return .transferEncoded }
        var length: Int?
        for (name, value) in head.headers where name == "content-length" {
            for element in value.split(separator: ",", omittingEmptySubsequences: false) {
                guard let number = decimal(element.trimmingSpaces().utf8) else {
                    return .malformed("bad content-length")
                }
                if let length, length != number { return .malformed("conflicting content-length") }
                length = number
            }
        }
        guard let length, length > 0 else { return .noBody }
        return .contentLength(length)
    }

    /// Whether the body is chunked and nothing else (`Transfer-Encoding: chunked`, the only
    /// coding alstap reads: OTLP/HTTP senders such as Envoy stream their bodies so).
    public static func isChunkedOnly(_ head: HTTP1RequestHead) -> Bool {
        let codings = head.headers.filter { $0.name == "transfer-encoding" }
            .flatMap { $0.value.split(separator: ",") }.map { $0.trimmingSpaces().lowercased() }
        return codings == ["chunked"]
    }

    /// `1*DIGIT` as an Int; nil when empty, not all digits, or too large.
    private static func decimal(_ digits: String.UTF8View) -> Int? {
        guard !digits.isEmpty else { return nil }
        var value = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            value = sum
        }
        return value
    }

    /// `tchar` (RFC 9110 §5.6.2): the bytes a field name may hold.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
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
    package func trimmingSpaces() -> String {
        var text = self[...]
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return String(text)
    }
}
