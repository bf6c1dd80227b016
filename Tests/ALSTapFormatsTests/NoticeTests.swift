import ALSTapALS
import ALSTapFormats
import Foundation
import Testing

/// Copies of a buffer's bytes (the parameter keeps the buffer alive while they are copied).
private func text(_ bytes: SharedBytes) -> String { String(decoding: bytes.bytes, as: UTF8.self) }
private func array(_ bytes: SharedBytes) -> [UInt8] { Array(bytes.bytes) }

/// Notices are the lines of a stream that are not entries: one encoder for every format, and a
/// parser for the ones a replica sends a cluster tap.
@Suite struct NoticeTests {
    static let all: [Notice] = [.lost(count: 12, reason: .slow), .lost(count: 3, reason: .rate), .shutdown,
                                .peer("10.0.0.7:9002", message: "unreachable; retrying every 2 s"), .replayed]

    @Test(arguments: all) func everyNoticeReadsBackFromItsJSON(_ notice: Notice) {
        #expect(Notice(json: notice.json) == notice)
    }

    @Test(arguments: all) func theJSONIsValidAndTyped(_ notice: Notice) throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(notice.json.utf8)) as? [String: Any])
        #expect(object["type"] as? String == notice.type)
    }

    @Test func theJSONLinesAreTheDocumentedOnes() {
        #expect(Notice.lost(count: 12, reason: .slow).json == #"{"type":"lost","count":12,"reason":"slow"}"#)
        #expect(Notice.shutdown.json == #"{"type":"shutdown"}"#)
        #expect(Notice.replayed.json == #"{"type":"replayed"}"#)
        #expect(Notice.peer("a:1", message: "connected").json == #"{"type":"notice","peer":"a:1","message":"connected"}"#)
    }

    @Test func eachFormatFramesTheNoticeItsWay() {
        let lost = Notice.lost(count: 5, reason: .rate)
        #expect(text(lost.encoded(as: .json)) == lost.json + "\n")
        #expect(text(lost.encoded(as: .text)) == "# skipped 5 entries over this subscriber's max_rps\n")
        #expect(text(lost.encoded(as: .sse)) == "event: lost\ndata: \(lost.json)\n\n")
        let frame = array(lost.encoded(as: .als))
        #expect(frame[0] == ReplicaFrames.noticeFlag)
        #expect(Int(frame[1]) << 24 | Int(frame[2]) << 16 | Int(frame[3]) << 8 | Int(frame[4]) == lost.json.utf8.count)
        #expect(String(decoding: frame[5...], as: UTF8.self) == lost.json)
    }

    @Test func textLinesSayWhatHappened() {
        #expect(Notice.lost(count: 2, reason: .slow).text == "# lost 2 entries: this subscriber read too slowly")
        #expect(Notice.shutdown.text == "# alstap is shutting down")
        #expect(Notice.peer("p:1", message: "left the peer list").text == "# peer p:1: left the peer list")
    }

    @Test func aPeersWordsAreEscapedInJSONAndText() throws {
        let hostile = Notice.peer("p:1", message: "answered 403: \"</script>\u{1B}[2J\u{7F}\n")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(hostile.json.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "answered 403: \"</script>\u{1B}[2J\u{7F}\n")
        #expect(!hostile.text.contains("\u{1B}"), "no terminal control bytes in a text line")
        #expect(!hostile.text.contains("\n"))
        #expect(Notice(json: hostile.json) == hostile)
    }

    @Test(arguments: [
        "", "{", "[]", "{\"type\":\"lost\"}", "{\"type\":\"lost\",\"count\":-1,\"reason\":\"slow\"}",
        "{\"type\":\"lost\",\"count\":1,\"reason\":\"bored\"}", "{\"type\":\"other\"}", "{\"count\":1}",
        "{\"type\":\"shutdown\"} trailing", "{\"type\":\"notice\",\"peer\":\"p\"}", "{\"type\":\"shutdown\",}",
        "{\"type\":\"lost\",\"count\":99999999999999999999999,\"reason\":\"slow\"}", "{\"type\":\"a\u{01}\"}",
        "{\"type\":\"shut\\qdown\"}", "{\"type\":{\"nested\":1}}",
    ])
    func malformedOrUnknownNoticesAreNothing(_ json: String) {
        #expect(Notice(json: json) == nil)
    }

    @Test func aHugeNoticeIsRefusedUnread() {
        let big = "{\"type\":\"notice\",\"peer\":\"p\",\"message\":\"" + String(repeating: "x", count: 10_000) + "\"}"
        #expect(Notice(json: big) == nil)
    }

    @Test func whitespaceAndUnicodeEscapesAreRead() {
        #expect(Notice(json: " { \"type\" : \"lost\" , \"reason\":\"slow\", \"count\" : 7 } ") == .lost(count: 7, reason: .slow))
        #expect(Notice(json: #"{"type":"notice","peer":"p","message":"caf\u00e9 \/ ok"}"#) == .peer("p", message: "café / ok"))
    }
}

@Suite struct FramingTests {
    @Test func contentTypesPerFormat() {
        #expect(OutputFormat.json.contentType == "application/x-ndjson")
        #expect(OutputFormat.text.contentType == "text/plain; charset=utf-8")
        #expect(OutputFormat.sse.contentType == "text/event-stream")
        #expect(OutputFormat.als.contentType == "application/vnd.alstap.als-frames")
    }

    @Test func sseFramingWrapsALineIntoOneEvent() {
        let line = "{\"type\":\"http\"}\n"
        #expect(text(SSE.eventStart) + line + text(SSE.eventEnd) == "data: {\"type\":\"http\"}\n\n")
    }

    /// The header announces exactly the bytes that follow it: identifier field, then the logs field.
    @Test(arguments: [(false, 0), (true, 10), (false, 300), (true, 70_000)])
    func aReplicaHeaderCountsWhatFollows(isTCP: Bool, entryBytes: Int) {
        let identifier = SharedBytes("node-identifier")
        let header = array(ReplicaFrames.header(identifier: identifier, isTCP: isTCP, entryBytes: entryBytes))
        #expect(header[0] == 0)
        let length = Int(header[1]) << 24 | Int(header[2]) << 16 | Int(header[3]) << 8 | Int(header[4])
        #expect(length == header.count - 5 + entryBytes, "the frame is the rest of the header plus the entries")
        #expect(header[5] == 0x0A && Int(header[6]) == identifier.count)
        #expect(header[7 + identifier.count] == (isTCP ? 0x1A : 0x12))
    }

    @Test func aReplicaHeaderWithoutIdentifierStartsWithTheLogs() {
        let header = array(ReplicaFrames.header(identifier: nil, isTCP: false, entryBytes: 5))
        #expect(header == [0, 0, 0, 0, 7, 0x12, 5])
    }
}
