import ALSTapALS
import ALSTapCapture
import ALSTapCore
import ALSTapFilter
import ALSTapFormats
import ALSTapHTTP1
import ALSTapMetrics
import Foundation
import Testing

/// Captures without sockets: the file format read in any pieces, every refusal, times for
/// `--since`, and a capture written by a tap subscriber read back into the same lines.
@Suite struct CaptureTests {
    static func fixture(_ name: String) throws -> [UInt8] {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../ALSTapALSTests/Fixtures")
        return Array(try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func record(_ message: [UInt8], micros: Int64 = 1_764_633_600_000_000, kind: UInt8 = 0) -> [UInt8] {
        let body = kind == 0 ? (0..<8).map { UInt8(truncatingIfNeeded: micros >> (56 - 8 * $0)) } + message : message
        let length = UInt32(body.count)
        return [kind, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + body
    }

    static var header: [UInt8] { Array(CaptureFile.header.bytes) }

    enum Seen: Equatable {
        case header(UInt16, String), entries(Int64, [UInt8]), notice(String)
    }

    /// Every event of `bytes` fed in pieces of `piece` bytes, and what `finish` said.
    static func read(_ bytes: [UInt8], piece: Int) throws -> ([Seen], String?) {
        var reader = CaptureReader()
        var seen: [Seen] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + piece)
            try bytes[offset..<end].withUnsafeBytes { chunk in
                try reader.feed(chunk) { event in
                    switch event {
                    case .header(let version, let writer): seen.append(.header(version, writer))
                    case .entries(let micros, let message): seen.append(.entries(micros, Array(message)))
                    case .notice(let json): seen.append(.notice(String(decoding: json, as: UTF8.self)))
                    }
                }
            }
            offset = end
        }
        return (seen, reader.finish())
    }

    @Test func aFileReadsTheSameInPiecesOfAnySize() throws {
        let message = try Self.fixture("http.bin")
        let file = Self.header + Self.record(message) + Self.record(Array(#"{"type":"lost","count":3,"reason":"slow"}"#.utf8), kind: 0x80)
            + Self.record(Array("from a later version".utf8), kind: 9) + Self.record(message, micros: -5)
        let expected: [Seen] = [.header(1, CaptureFile.alstapVersion), .entries(1_764_633_600_000_000, message),
                                .notice(#"{"type":"lost","count":3,"reason":"slow"}"#), .entries(-5, message)]
        for piece in [1, 2, 5, 13, 64, 4096, file.count] {
            let (seen, cut) = try Self.read(file, piece: piece)
            #expect(seen == expected, "pieces of \(piece)")
            #expect(cut == nil)
        }
    }

    @Test func aFileCutShortReadsUpToItsLastWholeRecord() throws {
        let file = Self.header + Self.record([1, 2, 3]) + Self.record([4, 5, 6])
        let (seen, cut) = try Self.read(Array(file.dropLast(2)), piece: 7)
        #expect(seen.count == 2, "the header and the first record")
        #expect(cut == "cut short: 14 bytes after the last whole record (record 2 is incomplete)")
        #expect(try Self.read(Array(Self.header.prefix(6)), piece: 100).1 == "cut short inside its header (6 bytes)")
        #expect(try Self.read([], piece: 1).1 == "empty: not an alstap capture")
    }

    @Test func whatIsNotACaptureIsRefused() {
        let cases: [([UInt8], String)] = [
            (Array("{\"type\":\"http\"}\n".utf8), "not an alstap capture (no \"ALSTAPCAP\" header)"),
            (Array("ALSTAPCAP\n".utf8) + [0, 2, 0, 0], "capture format version 2 is newer than this alstap reads (1): upgrade alstap"),
            (Array("ALSTAPCAP\n".utf8) + [0, 0, 0, 0], "unknown capture format version 0"),
            (Self.header + [0, 0x7F, 0xFF, 0xFF, 0xFF], "record 1 claims 2147483647 bytes, over 67108864: not a capture record"),
            (Self.header + [0, 0, 0, 0, 3, 1, 2, 3], "record 1 is too short for an entries record"),
        ]
        for (bytes, message) in cases {
            #expect(throws: CaptureReader.Failure(message: message)) { _ = try Self.read(bytes, piece: 3) }
        }
    }

    @Test func timesForSinceAndUntil() {
        let day: Int64 = 1_764_633_600_000_000  // 2025-12-02T00:00:00Z
        #expect(CaptureTime(parsing: "2025-12-02T00:00:00Z") == .instant(day))
        #expect(CaptureTime(parsing: "2025-12-02T10:05:00.25Z") == .instant(day + 36_300_250_000))
        #expect(CaptureTime(parsing: "2025-12-02T11:05:00+01:00") == .instant(day + 36_300_000_000))
        #expect(CaptureTime(parsing: "2025-12-01T23:05:00-01:00") == .instant(day + 300_000_000))
        #expect(CaptureTime(parsing: "1970-01-01T00:00:00Z") == .instant(0))
        #expect(CaptureTime(parsing: "2000-03-01T00:00:00Z") == .instant(951_868_800_000_000), "after a leap day")
        #expect(CaptureTime(parsing: "10:05") == .timeOfDay(36_300_000_000))
        #expect(CaptureTime(parsing: "10:05:07.5") == .timeOfDay(36_307_500_000))
        for bad in ["", "10", "24:00", "10:60", "1:05", "10:05:07.1234567", "2025-12-02T10:05:00", "2025-13-02T10:05:00Z",
                    "2025-12-02T10:05:00+1:00", "25-12-02T10:05:00Z", "10:05:0a", "١٠:٠٥"] {
            #expect(CaptureTime(parsing: bad) == nil, "\(bad)")
        }
        let afternoon = day + 15 * 3_600_000_000
        #expect(CaptureTime.timeOfDay(36_300_000_000).micros(onTheDayOf: afternoon) == day + 36_300_000_000)
        #expect(CaptureTime.instant(42).micros(onTheDayOf: afternoon) == 42)
        #expect(CaptureTime.timeOfDay(0).micros(onTheDayOf: -1) == -CaptureTime.microsPerDayForTests, "before 1970")
        // A file's receive time may be anything: no overflow trap.
        _ = CaptureTime.timeOfDay(86_399_000_000).micros(onTheDayOf: .min)
        _ = CaptureTime.timeOfDay(86_399_000_000).micros(onTheDayOf: .max)
    }

    /// The fixture's JSON lines as the server's decoder writes them (default redaction).
    static func serverLines(_ message: [UInt8], redacted: [String] = CapturePlayback.redactedHeaders) throws -> [UInt8] {
        let decoder = ALSDecoder(redactedHeaders: redacted)
        var reporter = Reporter()
        let batch = try message.withUnsafeBytes { try decoder.decode($0, reporter: &reporter, formats: .json, decodedAtNanos: 1) }
        return Array(batch.json!.bytes.bytes)
    }

    static func play(_ file: [UInt8], _ query: String = "", since: CaptureTime? = nil,
                     until: CaptureTime? = nil) throws -> (out: [UInt8], notes: [CapturePlayback.Note]) {
        var out: [UInt8] = []
        var notes: [CapturePlayback.Note] = []
        let parsed = try TapQuery(RequestTarget("/tap?" + query).query)
        let playback = CapturePlayback(query: parsed, since: since, until: until, output: { out += $0 }, onNote: { notes.append($0) })
        try file.withUnsafeBytes { try playback.feed($0) }
        #expect(playback.finish() == nil)
        return (out, notes)
    }

    /// A capture written by a `format=capture` subscriber (as the server writes it) reads back
    /// into the very bytes a JSON subscriber got, and filters like one.
    @Test func aSubscribersCaptureReadsBackIntoTheSameLines() throws {
        let message = try Self.fixture("http.bin")
        let decoder = ALSDecoder(redactedHeaders: CapturePlayback.redactedHeaders)
        var reporter = Reporter()
        let batch = try message.withUnsafeBytes {
            try decoder.decode($0, reporter: &reporter, formats: [.json, .als], facts: .filters, decodedAtNanos: 5_000)
        }
        let counters = Counters()
        let capture = Subscriber(format: .capture, filter: nil, capacityLines: 100, counters: counters, clock: { 0 })
        capture.wallMicros = { 1_764_633_600_000_000 + Int64($0 / 1000) }
        capture.offer(batch)
        var file: [UInt8] = []
        capture.forEachQueuedSlice { file += $0; return true }
        #expect(file.starts(with: Self.header))
        let (out, notes) = try Self.play(file)
        #expect(out == Array(batch.json!.bytes.bytes))
        #expect(notes == [.header(writer: CaptureFile.alstapVersion)])
        let inbound = try Self.play(file, "direction=in").out
        #expect(String(decoding: inbound, as: UTF8.self).split(separator: "\n").count == 1)
        #expect(try Self.play(file, "ns=nowhere").out.isEmpty)
        #expect(try Self.play(file, "format=text").out.count > 0)
    }

    @Test func sinceAndUntilBoundTheEntriesStartTimes() throws {
        let message = try Self.fixture("http.bin")
        // Received on the day the fixture's first entry started (2025-11-27T06:58:08.123456Z; the
        // second has no start time): a time of day is on the capture's first record's day.
        let file = Self.header + Self.record(message, micros: 1_764_226_688_200_000)
        let all = String(decoding: try Self.play(file).out, as: UTF8.self).split(separator: "\n")
        #expect(all.count == 2)
        #expect(try Self.play(file, since: CaptureTime(parsing: "06:58:08")).out.count > 0)
        let late = try Self.play(file, since: CaptureTime(parsing: "2025-11-27T06:58:09Z")).out
        #expect(late.isEmpty)
        let early = try Self.play(file, until: CaptureTime(parsing: "2025-11-27T06:58:08.123456Z")).out
        #expect(String(decoding: early, as: UTF8.self).split(separator: "\n").count == 2)
    }

    @Test func aRecordThatDoesNotDecodeIsSkippedAndTheRestRead() throws {
        let message = try Self.fixture("http.bin")
        let file = Self.header + Self.record([0xFF, 0xFF, 0xFF]) + Self.record(message)
        let (out, notes) = try Self.play(file)
        #expect(out == (try Self.serverLines(message)))
        #expect(notes.contains { if case .skipped(record: 1, _) = $0 { true } else { false } })
    }

    /// `--redact-header` reaches the ALS bytes alstap sends on: a capture holds `[redacted]`,
    /// never the value; an entry without such a header is sent on byte for byte.
    @Test func redactedHeadersAreRedactedInTheCapturedBytes() throws {
        let message = try Self.fixture("http.bin")
        let decoder = ALSDecoder(redactedHeaders: ["x-b3-traceid"])
        var reporter = Reporter()
        let batch = try message.withUnsafeBytes { try decoder.decode($0, reporter: &reporter, formats: .als, decodedAtNanos: 1) }
        let als = Array(batch.als!.bytes.bytes)
        let secret = Array("80f198ee56343ba864fe8b2a57d3eff7".utf8)
        #expect(!als.indices.contains { als[$0...].starts(with: secret) })
        #expect(als.indices.contains { als[$0...].starts(with: Array("[redacted]".utf8)) })
        let plain = ALSDecoder()
        var other = Reporter()
        let untouched = try message.withUnsafeBytes { try plain.decode($0, reporter: &other, formats: .als, decodedAtNanos: 1) }
        let original = Array(untouched.als!.bytes.bytes)
        #expect(original.indices.contains { original[$0...].starts(with: secret) }, "without the name: as received")
    }
}

extension CaptureTime {
    static var microsPerDayForTests: Int64 { 86_400_000_000 }
}
