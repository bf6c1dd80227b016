import Testing

@testable import ALSTapHTTP1

@Suite struct HTTP1ParserTests {
    func parse(_ text: String, max: Int = 16 * 1024) -> HTTP1ParseResult {
        Array(text.utf8).withUnsafeBytes { HTTP1RequestParser.parse($0, maxHeadBytes: max) }
    }

    @Test func completeHead() {
        let raw = "GET /tap?format=text HTTP/1.1\r\nHost: localhost\r\nUser-Agent:  curl/7.88.1 \r\n\r\nextra"
        guard case .complete(let head, let consumed) = parse(raw) else {
            Issue.record("expected a complete head")
            return
        }
        #expect(head.method == "GET")
        #expect(head.target == "/tap?format=text")
        #expect(head.version == "HTTP/1.1")
        #expect(head.header("host") == "localhost")
        #expect(head.header("user-agent") == "curl/7.88.1")
        #expect(head.keepAlive)
        #expect(consumed == raw.utf8.count - "extra".utf8.count)
    }

    @Test func bareLineFeedsAndConnectionClose() {
        guard case .complete(let head, _) = parse("GET /healthz HTTP/1.1\nConnection: close\n\n") else {
            Issue.record("expected a complete head")
            return
        }
        #expect(!head.keepAlive)
        guard case .complete(let old, _) = parse("GET / HTTP/1.0\r\n\r\n") else {
            Issue.record("expected a complete head")
            return
        }
        #expect(!old.keepAlive)
    }

    @Test func incompleteTooLargeAndMalformed() {
        #expect(parse("GET /tap HTTP/1.1\r\nHost: x\r\n") == .incomplete)
        #expect(parse("GET /tap HTTP/1.1\r\nX: " + String(repeating: "a", count: 100), max: 64) == .tooLarge)
        #expect(parse("GET /tap HTTP/1.1\r\nX: " + String(repeating: "a", count: 100) + "\r\n\r\n", max: 64) == .tooLarge)
        #expect(parse("GARBAGE\r\n\r\n") == .malformed("bad request line"))
        #expect(parse("GET / HTTP/1.1\r\nno colon here\r\n\r\n") == .malformed("bad header line"))
        #expect(parse("\u{16}\u{03}\u{01} binary\r\n\r\n") == .malformed("bad request line"))
    }

    func framing(_ headers: String) -> HTTP1BodyFraming? {
        guard case .complete(let head, _) = parse("POST /tap HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n") else {
            return nil
        }
        return HTTP1RequestParser.bodyFraming(of: head)
    }

    @Test func noBodyWithoutFramingHeaders() {
        #expect(framing("") == .noBody)
        #expect(framing("Content-Length: 0\r\n") == .noBody)
        #expect(framing("Content-Length: 000\r\n") == .noBody)
    }

    @Test func contentLength() {
        #expect(framing("Content-Length: 42\r\n") == .contentLength(42))
        #expect(framing("content-length:7\r\n") == .contentLength(7))
        #expect(framing("Content-Length: \t0012 \r\n") == .contentLength(12))
        #expect(framing("Content-Length: 9223372036854775807\r\n") == .contentLength(Int.max))
    }

    @Test func badContentLength() {
        for value in ["", "abc", "12a", "-1", "+1", "1 2", "0x10", "1.5", "１２",
                      "9223372036854775808", "99999999999999999999999"] {
            #expect(framing("Content-Length: \(value)\r\n") == .malformed("bad content-length"), "\(value)")
        }
        #expect(framing("Content-Length: 5,\r\n") == .malformed("bad content-length"))
        #expect(framing("Content-Length: 5\r\nContent-Length:\r\n") == .malformed("bad content-length"))
    }

    @Test func repeatedContentLength() {
        #expect(framing("Content-Length: 5\r\nContent-Length: 5\r\n") == .contentLength(5))
        #expect(framing("Content-Length: 5, 5,5\r\n") == .contentLength(5))
        #expect(framing("Content-Length: 5\r\nContent-Length: 005\r\n") == .contentLength(5))
        #expect(framing("Content-Length: 5\r\nContent-Length: 6\r\n") == .malformed("conflicting content-length"))
        #expect(framing("Content-Length: 5, 6\r\n") == .malformed("conflicting content-length"))
        #expect(framing("Content-Length: 0\r\nContent-Length: 30\r\n") == .malformed("conflicting content-length"))
    }

    @Test func transferEncoding() {
        #expect(framing("Transfer-Encoding: chunked\r\n") == .transferEncoded)
        #expect(framing("Transfer-Encoding: gzip, chunked\r\n") == .transferEncoded)
        #expect(framing("transfer-encoding: identity\r\n") == .transferEncoded)
        #expect(framing("Transfer-Encoding:\r\n") == .transferEncoded)
    }

    @Test func transferEncodingWithContentLength() {
        // RFC 9112 §6.1: both at once is faulty framing whatever the order or the values.
        #expect(framing("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") == .transferEncoded)
        #expect(framing("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") == .transferEncoded)
        #expect(framing("Transfer-Encoding: chunked\r\nContent-Length: x\r\n") == .transferEncoded)
    }

    @Test func whitespaceBeforeColonIsMalformed() {
        // RFC 9112 §5.1: else `Content-Length : 30` would be a header alstap ignores (no body).
        #expect(parse("GET / HTTP/1.1\r\nContent-Length : 30\r\n\r\n") == .malformed("bad header line"))
        #expect(parse("GET / HTTP/1.1\r\nTransfer-Encoding\t: chunked\r\n\r\n") == .malformed("bad header line"))
        #expect(parse("GET / HTTP/1.1\r\nHost: x\r\n folded: line\r\n\r\n") == .malformed("bad header line"))
        #expect(parse("GET / HTTP/1.1\r\nX-Ok_Name.1~: v\r\n\r\n") != .malformed("bad header line"))
    }

    @Test func bodyIsNotParsedAsARequest() {
        // A body that looks like a request is skipped as a body: the next head is the one after it.
        let inner = "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n"
        let next = "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
        let raw = Array(("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: \(inner.utf8.count)\r\n\r\n"
            + inner + next).utf8)
        var offset = 0
        var targets: [String] = []
        while offset < raw.count {
            let result = raw.withUnsafeBytes {
                HTTP1RequestParser.parse(UnsafeRawBufferPointer(rebasing: $0[offset...]), maxHeadBytes: 16 * 1024)
            }
            guard case .complete(let head, let consumed) = result else {
                Issue.record("expected a complete head at \(offset), got \(result)")
                return
            }
            targets.append(head.target)
            offset += consumed
            switch HTTP1RequestParser.bodyFraming(of: head) {
            case .noBody: break
            case .contentLength(let length): offset += length
            default: Issue.record("unexpected framing for \(head.target)")
            }
        }
        #expect(targets == ["/healthz", "/readyz"])
        #expect(offset == raw.count)
    }

    @Test func queryParameters() {
        let target = RequestTarget("/tap?ns=demo&path=%2Fapi%2Fv1&ns=other&flag&q=a+b&bad=%zz")
        #expect(target.path == "/tap")
        #expect(target.query.map(\.name) == ["ns", "path", "ns", "flag", "q", "bad"])
        #expect(target.query.map(\.value) == ["demo", "/api/v1", "other", "", "a b", "%zz"])
        #expect(RequestTarget("/healthz").query.isEmpty)
    }

    @Test func chunkHeaders() {
        var buffer = [UInt8](repeating: 0, count: 32)
        for (count, expected) in [(0, "0\r\n"), (10, "a\r\n"), (255, "ff\r\n"), (65_536, "10000\r\n")] {
            let length = buffer.withUnsafeMutableBytes { HTTP1Response.chunkHeader(count, into: $0) }
            #expect(String(decoding: buffer[..<length], as: UTF8.self) == expected)
        }
    }
}
