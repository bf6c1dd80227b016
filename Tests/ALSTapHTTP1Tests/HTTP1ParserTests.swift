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
