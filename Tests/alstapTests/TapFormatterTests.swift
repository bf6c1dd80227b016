import FoundationEssentials
import Testing

@testable import alstap

@Suite struct TapFormatterTests {
    /// A server JSON line whose strings carry terminal commands: OSC 52 (set the clipboard), an OSC 8
    /// link, clear-screen, line breaks, a C1 CSI, DEL, BS.
    static let hostile = #"""
        {"time":"2025-11-24T16:00:00.000001Z\u001b[2J","type":"http","direction":"outbound",\#
        "source":{"workload":"reviews\r-v1","namespace":"default\u0008"},\#
        "destination":{"service":"ratings\u009d0;x\u0007","namespace":"default","port":9080},\#
        "request":{"id":"req\nforged","method":"GET\u007f","scheme":"http\u0085",\#
        "path":"/a\u001b]52;c;ZXZpbA==\u0007b\u001b]8;;http://x\u001b\\link\u001b]8;;\u001b\\",\#
        "userAgent":"curl\u001b[2J/8"},"response":{"code":503,"flags":["UF\u001b[0m"]},\#
        "durations":{"total":1.25},"upstream":{"host":"10.1.0.9:9080\t"},\#
        "reporter":{"nodeId":"sidecar~\u009b31m~x"},"protocol":"HTTP/1.1\r\n"}
        """#

    static let hostilePair = #"""
        {"type":"pair","paired":true,"requestId":"id\n2\u001b[A","source":{"address":"10.0.0.1\u0007"},\#
        "destination":{"workload":"w\u009b","namespace":"n\u007f"},"request":{"method":"GET","path":"/p\r"},\#
        "outbound":{"time":"2025-11-24T16:00:00Z","protocol":"HTTP/2\u001b","response":{"code":200},\#
        "durations":{"total":2}}}
        """#

    static func entry(_ json: String) throws -> TapEntry {
        try JSONDecoder().decode(TapEntry.self, from: Data(json.utf8))
    }

    /// The line without alstap's own colors (`ESC [ digits m`).
    static func uncolored(_ line: String) -> String {
        var out = String.UnicodeScalarView()
        var scalars = line.unicodeScalars[...]
        while let scalar = scalars.popFirst() {
            if scalar == "\u{1B}", scalars.first == "[" {
                let digits = scalars.dropFirst().prefix { ("0"..."9").contains($0) }
                let end = scalars.dropFirst(1 + digits.count)
                if !digits.isEmpty, end.first == "m" {
                    scalars = end.dropFirst()
                    continue
                }
            }
            out.append(scalar)
        }
        return String(out)
    }

    static func controls(in text: String) -> [UInt32] {
        text.unicodeScalars.map(\.value).filter { $0 < 0x20 || (0x7F...0x9F).contains($0) }
    }

    @Test(arguments: [TapFormatter.Style.text, .wide], [false, true])
    func hostileStringsCannotReachTheTerminal(style: TapFormatter.Style, color: Bool) throws {
        let formatter = TapFormatter(style: style, color: color)
        for json in [Self.hostile, Self.hostilePair] {
            let line = formatter.format(try Self.entry(json))
            let shown = Self.uncolored(line)
            #expect(Self.controls(in: shown).isEmpty, "\(shown.debugDescription)")
            #expect(color || shown == line, "no escapes without color")
            #expect(!shown.contains("\n") && !shown.contains("\r"))
        }
    }

    @Test func hostileLinesReadAsText() throws {
        let text = TapFormatter(style: .text, color: false).format(try Self.entry(Self.hostile))
        #expect(text == #"16:00:00.000 out reviews?-v1.default? → ratings?0;x?.default:9080"#
            + #" "http? GET? /a?]52;c;ZXZpbA==?b?]8;;http://x?\link?]8;;?\ HTTP/1.1??" 503 1.25ms UF?[0m"#)
        let wide = TapFormatter(style: .wide, color: true).format(try Self.entry(Self.hostile))
        #expect(wide.hasSuffix(#" id=req?forged ua="curl?[2J/8" upstream=10.1.0.9:9080? reporter=sidecar~?31m~x"#))
        #expect(wide.contains("\u{1B}[31mUF?[0m\u{1B}[0m"), "the flags' own escape defused inside alstap's color")
        let pair = TapFormatter(style: .wide, color: false).format(try Self.entry(Self.hostilePair))
        #expect(pair.hasPrefix("16:00:00Z pair 10.0.0.1? → w?.n?"))
        #expect(pair.hasSuffix(#" "- GET /p? HTTP/2?" 200 out=2.00ms id=id?2?[A"#))
    }

    @Test func plainStringsAreUntouched() {
        for text in ["", "plain", "é 世 😀 \u{A0} \"quoted\" back\\slash ~"] {
            #expect(TerminalText.safe(text) == text)
        }
        #expect(TerminalText.safe("\u{1B}\u{07}\u{08}\t\r\n\u{7F}\u{80}\u{9B}\u{9F}\u{A0}") == "??????????\u{A0}")
    }

    /// `-o json`: the same JSON value, without DEL, C1 or C0 bytes.
    @Test func jsonLinesKeepTheirValue() throws {
        let line = "{\"path\":\"/a\u{7F}\u{80}\u{9B}\u{9F}b\u{A0}é\",\t\"n\":1}\r"
        let safe = TerminalText.safeJSON(line[...])
        #expect(safe == #"{"path":"/a\u007f\u0080\u009b\u009fb"# + "\u{A0}é\", \"n\":1} ")
        #expect(Self.controls(in: safe).isEmpty)
        struct Line: Decodable, Equatable { var path: String; var n: Int }
        #expect(try JSONDecoder().decode(Line.self, from: Data(safe.utf8))
            == JSONDecoder().decode(Line.self, from: Data(line.utf8)))
    }
}
