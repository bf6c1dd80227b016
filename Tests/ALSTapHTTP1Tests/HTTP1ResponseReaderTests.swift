import Testing

@testable import ALSTapHTTP1

@Suite struct HTTP1ResponseReaderTests {
    /// Feeds `raw` in pieces of `split` bytes; returns the status, the body and whether it completed.
    func read(_ raw: [UInt8], split: Int) throws -> (status: Int, body: [UInt8], complete: Bool) {
        var reader = HTTP1ResponseReader(maxHeadBytes: 1024)
        var status = 0
        var body: [UInt8] = []
        var offset = 0
        while offset < raw.count {
            let piece = Array(raw[offset..<min(raw.count, offset + split)])
            offset += split
            try piece.withUnsafeBytes { bytes in
                try reader.feed(bytes) { event in
                    switch event {
                    case .head(let code): status = code
                    case .body(let chunk): body += chunk
                    }
                }
            }
        }
        return (status, body, reader.isComplete)
    }

    @Test func chunkedBodySplitAnywhere() throws {
        let raw = Array(("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5\r\nhello\r\n1b;ext=1\r\n, chunked world of alstap!\n\r\n0\r\nX-Trailer: y\r\n\r\n").utf8)
        for split in 1...raw.count {
            let result = try read(raw, split: split)
            #expect(result.status == 200)
            #expect(String(decoding: result.body, as: UTF8.self) == "hello, chunked world of alstap!\n")
            #expect(result.complete)
        }
    }

    @Test func contentLengthAndUntilClose() throws {
        let fixed = try read(Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\n\r\nbad\n".utf8), split: 3)
        #expect(fixed.status == 400 && fixed.body == Array("bad\n".utf8) && fixed.complete)
        let open = try read(Array("HTTP/1.0 200 OK\r\n\r\nstreaming".utf8), split: 4)
        #expect(open.status == 200 && open.body == Array("streaming".utf8) && !open.complete)
    }

    @Test func badResponsesAreErrors() {
        #expect(throws: HTTP1ResponseReader.Error.self) { try read(Array("SSH-2.0-OpenSSH\r\n\r\n".utf8), split: 100) }
        #expect(throws: HTTP1ResponseReader.Error.self) {
            try read(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".utf8), split: 100)
        }
        #expect(throws: HTTP1ResponseReader.Error.self) {
            try read(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n".utf8), split: 100)
        }
        #expect(throws: HTTP1ResponseReader.Error.self) {
            try read(Array(("HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 2000)).utf8), split: 100)
        }
    }
}
