import ALSTapHTTP1
import Testing

/// Request bodies by Content-Length and chunked, fed in any split, bounded, with the next
/// request's bytes left alone.
@Suite struct RequestBodyReaderTests {
    /// Feeds `input` in pieces of `step` bytes; returns the outcome and the bytes consumed in all.
    static func feed(_ reader: inout RequestBodyReader, _ input: [UInt8], step: Int) -> (RequestBodyReader.Outcome, Int) {
        var used = 0
        var outcome = RequestBodyReader.Outcome.needMore
        var offset = 0
        while offset < input.count {
            let piece = Array(input[offset..<min(input.count, offset + step)])
            let (consumed, result) = piece.withUnsafeBytes { reader.consume($0) }
            used += consumed
            outcome = result
            if result != .needMore { return (outcome, used) }
            #expect(consumed == piece.count)
            offset += step
        }
        return (outcome, used)
    }

    @Test(arguments: [1, 3, 1000])
    func contentLengthStopsAtItsEnd(step: Int) {
        var reader = RequestBodyReader(.length(11), limit: 100)
        let (outcome, used) = Self.feed(&reader, Array("hello worldGET / HTTP/1.1".utf8), step: step)
        #expect(outcome == .complete)
        #expect(used == 11 || step < 11 && used <= 11)
        #expect(reader.body == Array("hello world".utf8))
    }

    @Test(arguments: [1, 2, 7, 1000])
    func chunkedWithExtensionsAndTrailers(step: Int) {
        var reader = RequestBodyReader(.chunked, limit: 100)
        let wire = "5;name=value\r\nhello\r\n1\r\n \r\nA \r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\nNEXT"
        let (outcome, _) = Self.feed(&reader, Array(wire.utf8), step: step)
        #expect(outcome == .complete)
        #expect(reader.body == Array("hello 0123456789".utf8))
    }

    @Test func chunkedLeavesTheNextRequest() {
        var reader = RequestBodyReader(.chunked, limit: 100)
        let wire = Array("3\r\nabc\r\n0\r\n\r\nPOST /v1/logs".utf8)
        let (consumed, outcome) = wire.withUnsafeBytes { reader.consume($0) }
        #expect(outcome == .complete)
        #expect(consumed == wire.count - "POST /v1/logs".utf8.count)
    }

    @Test func bareLFIsAccepted() {
        var reader = RequestBodyReader(.chunked, limit: 100)
        let (outcome, _) = Self.feed(&reader, Array("2\nok\n0\n\n".utf8), step: 100)
        #expect(outcome == .complete)
        #expect(reader.body == Array("ok".utf8))
    }

    @Test func boundsAndBadFraming() {
        var overLength = RequestBodyReader(.length(101), limit: 100)
        #expect(Self.feed(&overLength, [1], step: 1).0 == .tooLarge)

        var overChunks = RequestBodyReader(.chunked, limit: 10)
        #expect(Self.feed(&overChunks, Array("8\r\n12345678\r\n8\r\n".utf8), step: 1).0 == .tooLarge)
        #expect(overChunks.body.count == 8)  // nothing of the chunk past the bound was kept

        var hugeSize = RequestBodyReader(.chunked, limit: 10)
        #expect(Self.feed(&hugeSize, Array("ffffffffffffffffffff\r\n".utf8), step: 100).0 == .malformed("bad chunk size"))

        for bad in ["x\r\n", "\r\n", "-1\r\n", ";ext\r\n"] {
            var reader = RequestBodyReader(.chunked, limit: 10)
            #expect(Self.feed(&reader, Array(bad.utf8), step: 100).0 == .malformed("bad chunk size"), "\(bad)")
        }
        var longData = RequestBodyReader(.chunked, limit: 100)
        #expect(Self.feed(&longData, Array("2\r\nabc\r\n".utf8), step: 100).0 == .malformed("chunk data longer than its size"))

        var endlessLine = RequestBodyReader(.chunked, limit: 100)
        let line = Array(repeating: UInt8(ascii: "1"), count: 5000)
        #expect(Self.feed(&endlessLine, line, step: 100).0 == .malformed("chunk line over 4096 bytes"))

        var endlessTrailers = RequestBodyReader(.chunked, limit: 100)
        let trailers = "0\r\n" + String(repeating: "x: y\r\n", count: 10)
        #expect(Self.feed(&endlessTrailers, Array(trailers.utf8), step: 100).0 == .needMore)  // the head timeout ends it
    }
}
