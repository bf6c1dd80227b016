import ALSTapSystem
import Glibc
import Testing

@testable import alstap

@Suite struct TapResponseTests {
    /// Feeds `raw` in pieces of `split` bytes; the lines handed out after each piece, and how it ended.
    func read(_ raw: String, split: Int) -> (lines: [[String]], end: TapClient.Failure?) {
        var response = TapResponse()
        var lines: [[String]] = []
        let bytes = Array(raw.utf8)
        var offset = 0
        while offset < bytes.count, response.end == nil {
            let piece = Array(bytes[offset..<min(bytes.count, offset + split)])
            offset += split
            lines.append(piece.withUnsafeBytes { response.feed($0) })
        }
        return (lines, response.end ?? response.closed())
    }

    static let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "6\r\n{\"a\":1\r\n" + "5\r\n}\n{\"b\r\n" + "5\r\n\":2}\n\r\n" + "0\r\n\r\n"

    @Test(arguments: [1, 3, 7, 1000])
    func chunkedLinesInOrderWhateverTheReads(_ split: Int) {
        let (lines, end) = read(Self.chunked, split: split)
        #expect(lines.flatMap { $0 } == ["{\"a\":1}", "{\"b\":2}"])
        guard case .lost = end else {
            Issue.record("the last chunk ends the stream as lost, not \(String(describing: end))")
            return
        }
    }

    @Test func aLineIsHandedOutWithTheReadThatEndsIt() {
        var response = TapResponse()
        let head = Array("HTTP/1.1 200 OK\r\n\r\nfirst\nsec".utf8)
        #expect(head.withUnsafeBytes { response.feed($0) } == ["first"])
        #expect(Array("ond\nthi".utf8).withUnsafeBytes { response.feed($0) } == ["second"])
        #expect(response.end == nil)
        // A body read until the connection closes ends as lost, the partial line dropped.
        guard case .lost = response.closed() else {
            Issue.record("EOF is .lost")
            return
        }
    }

    @Test func rejectionCarriesTheStatusAndTrimmedBody() {
        let (lines, end) = read("HTTP/1.1 403 Forbidden\r\nContent-Length: 14\r\n\r\nnot for you.\n\n", split: 5)
        #expect(lines.flatMap { $0 }.isEmpty)
        guard case .rejected(let status, let body) = end else {
            Issue.record("not rejected: \(String(describing: end))")
            return
        }
        #expect(status == 403)
        #expect(body == "not for you.")
    }

    @Test func chunkedRejectionAndOneEndedByClose() {
        let (_, chunked) = read("HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "4\r\nbad \r\n6\r\nvalue\n\r\n0\r\n\r\n", split: 4)
        guard case .rejected(400, "bad value") = chunked else {
            Issue.record("chunked: \(String(describing: chunked))")
            return
        }
        let (_, closed) = read("HTTP/1.1 503 Service Unavailable\r\n\r\ntoo many subscribers\n", split: 100)
        guard case .rejected(503, "too many subscribers") = closed else {
            Issue.record("until close: \(String(describing: closed))")
            return
        }
    }

    @Test func rejectionBodyIsBounded() {
        let body = String(repeating: "x", count: TapResponse.maxRejectionBytes + 10)
        let (_, end) = read("HTTP/1.1 500 Oops\r\n\r\n" + body, split: 4096)
        guard case .rejected(500, let text) = end else {
            Issue.record("not rejected: \(String(describing: end))")
            return
        }
        #expect(text.utf8.count == TapResponse.maxRejectionBytes)
    }

    @Test func malformedOrMissingResponseIsLost() {
        guard case .lost = read("SSH-2.0-OpenSSH\r\n\r\n", split: 100).end,
              case .lost = read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", split: 100).end,
              case .lost = TapResponse().closed() else {
            Issue.record("a bad or absent response is not .lost")
            return
        }
    }
}

@Suite struct TapClientTests {
    @Test func serverURLs() {
        #expect(TapClient(server: "http://example.com", token: nil)?.server == HostPort(host: "example.com", port: 80))
        #expect(TapClient(server: "http://127.0.0.1:9002/ui", token: nil)?.server == HostPort(host: "127.0.0.1", port: 9002))
        #expect(TapClient(server: "http://[::1]:9002", token: nil)?.server == HostPort(host: "::1", port: 9002))
        #expect(TapClient(server: "http://[::1]", token: nil)?.server == HostPort(host: "::1", port: 80))
        #expect(TapClient(server: "http://::1:9002", token: nil)?.server == HostPort(host: "::1", port: 9002),
                "unbracketed IPv6: the port after the last colon")
        for bad in ["https://example.com", "example.com:9002", "http://", "http://:9002", "http://h:x"] {
            #expect(TapClient(server: bad, token: nil) == nil, "\(bad) accepted")
        }
    }

    @Test func requestHead() throws {
        let client = try #require(TapClient(server: "http://[::1]:9002", token: "s3cret"))
        #expect(client.request(query: "format=json") == "GET /tap?format=json HTTP/1.1\r\nHost: [::1]:9002\r\n"
            + "User-Agent: alstap-tap\r\nAccept: application/x-ndjson\r\nAuthorization: Bearer s3cret\r\n\r\n")
        let anonymous = try #require(TapClient(server: "http://h:1", token: nil))
        #expect(!anonymous.request(query: "").contains("Authorization"))
        #expect(anonymous.request(query: "").hasPrefix("GET /tap HTTP/1.1\r\nHost: h:1\r\n"))
        #expect(anonymous.request(path: "/top", query: "by=route").hasPrefix("GET /top?by=route HTTP/1.1\r\nHost: h:1\r\n"
            + "User-Agent: alstap-top\r\n"))
    }

    @Test func backoffDoublesToFiveSecondsAndResets() {
        var backoff = TapClient.Backoff()
        #expect((0..<6).map { _ in backoff.next() } == [0.5, 1, 2, 4, 5, 5])
        backoff.reset()
        #expect(backoff.delay == 0.5 && backoff.next() == 0.5 && backoff.delay == 1)
    }

    @Test func queryEscapesValuesOnly() {
        #expect(TapClient.query([("path", "/a b&c"), ("by", "route")]) == "path=/a%20b%26c&by=route")
        #expect(TapClient.query([]) == "")
    }

    /// A one-connection server on a thread: reads the request head, answers `response`, closes.
    func serve(_ response: String, _ body: (UInt16) throws -> Void) throws {
        let (listener, port) = try Listener.open(ListenAddress(host: "127.0.0.1", port: 0))
        defer { Syscalls.close(listener) }
        _ = fcntl(listener, F_SETFL, 0)  // blocking accept on this thread
        let thread = LoopThread(name: "test-server") {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            var head: [UInt8] = []
            var byte: UInt8 = 0
            while !head.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)), read(fd, &byte, 1) == 1 { head.append(byte) }
            _ = Array(response.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(fd)
        }
        defer { thread.join() }
        try body(port)
    }

    @Test func streamsLinesUntilTheCallerStops() throws {
        try serve(TapResponseTests.chunked) { port in
            let client = try #require(TapClient(server: "http://127.0.0.1:\(port)", token: nil))
            var lines: [String] = []
            try client.stream(query: "format=json") { line in
                lines.append(String(line))
                return false
            }
            #expect(lines == ["{\"a\":1}"])
        }
    }

    @Test func streamEndsLostOrRejected() throws {
        try serve(TapResponseTests.chunked) { port in
            let client = try #require(TapClient(server: "http://localhost:\(port)", token: nil))
            var lines = 0
            let error = #expect(throws: TapClient.Failure.self) { try client.stream(query: "") { _ in lines += 1; return true } }
            #expect(lines == 2)
            #expect(error?.description == "connection lost")
        }
        try serve("HTTP/1.1 401 Unauthorized\r\nContent-Length: 10\r\n\r\nbad token\n") { port in
            let client = try #require(TapClient(server: "http://127.0.0.1:\(port)", token: "x"))
            let error = #expect(throws: TapClient.Failure.self) { try client.stream(query: "") { _ in true } }
            #expect(error?.description == "server answered 401: bad token")
        }
    }

    @Test func unreachableServerSaysSo() throws {
        let (probe, port) = try Listener.open(ListenAddress(host: "127.0.0.1", port: 0))
        Syscalls.close(probe)
        let client = try #require(TapClient(server: "http://127.0.0.1:\(port)", token: nil))
        let error = #expect(throws: TapClient.Failure.self) { try client.stream(query: "") { _ in true } }
        #expect(error?.description == "cannot connect to 127.0.0.1:\(port): Connection refused")
    }
}
