import CNghttp2
import Testing

@testable import ALSTapHTTP2

/// Records what the session reports; refuses streams past `acceptStreams`.
final class AbuseDelegate: HTTP2ServerSessionDelegate {
    var started: [Int32] = []
    var tooLarge: [Int32] = []
    var closed: [Int32: UInt32] = [:]
    var acceptStreams = Int.max
    var opened = 0

    func requestStarted(stream: Int32, head: HTTP2RequestHead, endStream: Bool) { started.append(stream) }
    func requestData(stream: Int32, _ chunk: UnsafeRawBufferPointer) {}
    func requestEnded(stream: Int32) {}
    func readBody(stream: Int32, into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyRead { .bytes(count: 0, end: true) }
    func trailers(stream: Int32) -> [HTTP2Header] { [] }
    func streamClosed(stream: Int32, errorCode: UInt32) { closed[stream] = errorCode }
    func headerListTooLarge(stream: Int32) { tooLarge.append(stream) }
    func streamOpening(stream: Int32) -> Bool {
        opened += 1
        return opened <= acceptStreams
    }
}

/// Hand-made client bytes: the frames an attacker writes.
enum Frames {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    static func frame(_ type: UInt8, flags: UInt8, stream: UInt32, _ payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags]
            + [UInt8(stream >> 24), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)]
            + payload
    }

    /// :method POST, :scheme http, :path /, :authority alstap (HPACK static table + a literal).
    static let pseudoHeaders: [UInt8] = [0x83, 0x86, 0x84, 0x41, 0x06] + Array("alstap".utf8)

    /// A 4000-byte header added to the dynamic table, then referenced `count` times: a few KB
    /// on the wire, `count` × 4 KB decoded.
    static func hpackBomb(count: Int) -> [UInt8] {
        var block = pseudoHeaders + [0x40, 0x03] + Array("x-a".utf8)
        var length = 4000 - 127
        block.append(0x7F)
        while length >= 0x80 {
            block.append(UInt8(length & 0x7F | 0x80))
            length >>= 7
        }
        block.append(UInt8(length))
        block += [UInt8](repeating: UInt8(ascii: "v"), count: 4000)
        block += [UInt8](repeating: 0xBE, count: count)  // indexed: dynamic entry 62
        return block
    }

    static func start() -> [UInt8] { preface + frame(4, flags: 0, stream: 0, []) }
}

@Suite struct AbuseTests {
    static func session(_ delegate: AbuseDelegate, _ settings: HTTP2ServerSettings = .init()) throws -> HTTP2ServerSession {
        try HTTP2ServerSession(delegate: delegate, settings: settings)
    }

    static func feed(_ session: HTTP2ServerSession, _ bytes: [UInt8]) throws(HTTP2Error) {
        var failure: HTTP2Error?
        bytes.withUnsafeBytes { raw in
            do throws(HTTP2Error) { try session.receive(raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    static func output(_ session: HTTP2ServerSession) throws -> [UInt8] {
        var out: [UInt8] = []
        _ = try session.send { chunk in
            out += chunk
            return true
        }
        return out
    }

    /// Frame types in the server's output (after its SETTINGS).
    static func frameTypes(_ bytes: [UInt8]) -> [(type: UInt8, stream: UInt32, payload: [UInt8])] {
        var frames: [(UInt8, UInt32, [UInt8])] = []
        var i = 0
        while i + 9 <= bytes.count {
            let length = Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            let stream = UInt32(bytes[i + 5] & 0x7F) << 24 | UInt32(bytes[i + 6]) << 16 | UInt32(bytes[i + 7]) << 8
                | UInt32(bytes[i + 8])
            frames.append((bytes[i + 3], stream, Array(bytes[(i + 9)..<min(bytes.count, i + 9 + length)])))
            i += 9 + length
        }
        return frames
    }

    @Test func theHeaderListLimitIsAnnouncedAndAHPACKBombIsResetUnanswered() throws {
        let delegate = AbuseDelegate()
        let session = try Self.session(delegate)
        let settings = Self.frameTypes(try Self.output(session)).first { $0.type == 4 }!.payload
        // SETTINGS_MAX_HEADER_LIST_SIZE (6) = 65536.
        #expect(stride(from: 0, to: settings.count, by: 6).contains { settings[$0] == 0 && settings[$0 + 1] == 6
            && settings[($0 + 2)..<($0 + 6)].elementsEqual([0, 1, 0, 0]) })
        let block = Frames.hpackBomb(count: 3_000)
        try Self.feed(session, Frames.start() + Frames.frame(1, flags: 0x5, stream: 1, block))
        #expect(delegate.tooLarge == [1])
        #expect(delegate.started.isEmpty, "never routed")
        let frames = Self.frameTypes(try Self.output(session))
        #expect(frames.contains { $0.type == 3 && $0.stream == 1 }, "RST_STREAM for the stream")
        // The connection is still usable: a small request on stream 3 is routed.
        try Self.feed(session, Frames.frame(1, flags: 0x5, stream: 3, Frames.pseudoHeaders))
        #expect(delegate.started == [3])
    }

    @Test func aBombInTheTrailersIsResetToo() throws {
        let delegate = AbuseDelegate()
        let session = try Self.session(delegate)
        _ = try Self.output(session)
        // HEADERS (no END_STREAM) that puts a 4000-byte header in the table, then trailers that
        // reference it 3 000 times.
        let bomb = Frames.hpackBomb(count: 0)
        try Self.feed(session, Frames.start() + Frames.frame(1, flags: 0x4, stream: 1, bomb)
            + Frames.frame(1, flags: 0x5, stream: 1, [UInt8](repeating: 0xBE, count: 3_000)))
        #expect(delegate.started == [1])
        #expect(delegate.tooLarge == [1])
        #expect(Self.frameTypes(try Self.output(session)).contains { $0.type == 3 && $0.stream == 1 })
    }

    @Test func headerListsUpToTheLimitPass() throws {
        let delegate = AbuseDelegate()
        let session = try Self.session(delegate)
        _ = try Self.output(session)
        try Self.feed(session, Frames.start() + Frames.frame(1, flags: 0x5, stream: 1, Frames.hpackBomb(count: 10)))
        #expect(delegate.started == [1])
        #expect(delegate.tooLarge.isEmpty)
    }

    @Test func aContinuationFloodIsAFatalErrorWithAGoAway() throws {
        let delegate = AbuseDelegate()
        let session = try Self.session(delegate)
        _ = try Self.output(session)
        var bytes = Frames.start() + Frames.frame(1, flags: 0, stream: 1, Frames.pseudoHeaders)
        for _ in 0..<10_000 { bytes += Frames.frame(9, flags: 0, stream: 1, []) }
        do {
            try Self.feed(session, bytes)
            Issue.record("10 000 CONTINUATION frames were accepted")
        } catch {
            let goAway = session.fatalGoAwayFrame(for: error)
            let frames = Self.frameTypes(goAway)
            #expect(frames.count == 1)
            #expect(frames[0].type == 7 && frames[0].stream == 0)
            #expect(frames[0].payload.suffix(4).elementsEqual([0, 0, 0, 0x0B]), "ENHANCE_YOUR_CALM")
        }
    }

    @Test func aGarbledConnectionGetsAProtocolErrorGoAway() throws {
        let delegate = AbuseDelegate()
        let session = try Self.session(delegate)
        do {
            try Self.feed(session, Array("GET / HTTP/1.1\r\n\r\n".utf8) + [UInt8](repeating: 0, count: 20))
            Issue.record("bytes that are no preface were accepted")
        } catch {
            let frames = Self.frameTypes(session.fatalGoAwayFrame(for: error))
            #expect(frames[0].type == 7)
            #expect(frames[0].payload.suffix(4).elementsEqual([0, 0, 0, 1]), "PROTOCOL_ERROR")
        }
    }

    @Test func streamsOverTheProcessBoundAreRefused() throws {
        let delegate = AbuseDelegate()
        delegate.acceptStreams = 2
        let session = try Self.session(delegate)
        _ = try Self.output(session)
        var bytes = Frames.start()
        for stream: UInt32 in [1, 3, 5, 7] { bytes += Frames.frame(1, flags: 0x4, stream: stream, Frames.pseudoHeaders) }
        try Self.feed(session, bytes)
        #expect(delegate.started == [1, 3])
        let resets = Self.frameTypes(try Self.output(session)).filter { $0.type == 3 }
        #expect(resets.map(\.stream) == [5, 7])
        #expect(resets.allSatisfy { $0.payload.elementsEqual([0, 0, 0, 7]) }, "REFUSED_STREAM: safe to retry")
    }
}
