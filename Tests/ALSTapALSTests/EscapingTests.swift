import Foundation
import Testing

@testable import ALSTapALS

@Suite struct EscapingTests {
    /// Hostile inputs and the string a JSON parser must read back.
    static let cases: [([UInt8], String)] = [
        (Array("plain".utf8), "plain"),
        (Array("quote\" backslash\\ slash/".utf8), "quote\" backslash\\ slash/"),
        (Array("line\nbreak\r\ttab".utf8), "line\nbreak\r\ttab"),
        ([0x00, 0x01, 0x1F, 0x7F], "\u{00}\u{01}\u{1F}\u{7F}"),
        (Array("é世😀".utf8), "é世😀"),
        ([0xFF, 0x41], "\u{FFFD}A"),                     // invalid lead byte
        ([0xC3], "\u{FFFD}"),                            // truncated sequence
        ([0xE2, 0x82], "\u{FFFD}\u{FFFD}"),              // truncated 3-byte
        ([0xC0, 0xAF], "\u{FFFD}\u{FFFD}"),              // overlong
        ([0xED, 0xA0, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"),  // surrogate
        ([0xF4, 0x90, 0x80, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"),  // above U+10FFFF
        ([0x61, 0xF0, 0x9F, 0x98, 0x80, 0x62], "a😀b"),
        ([0xC2, 0x80, 0xC2, 0x9B, 0xC2, 0x9F, 0xC2, 0xA0], "\u{80}\u{9B}\u{9F}\u{A0}"),  // C1 and NBSP: JSON keeps them
        (Array("\u{1B}]52;c;ZXZpbA==\u{07}\u{1B}[2J\u{08}".utf8), "\u{1B}]52;c;ZXZpbA==\u{07}\u{1B}[2J\u{08}"),
    ]

    /// Strings around the word sizes the fast path checks (8, 16, 24 bytes), plain or with a byte
    /// that needs escaping at the start, the middle or the end (where the last word overlaps).
    static let lengthCases: [([UInt8], String)] = [7, 8, 9, 15, 16, 17, 23, 24, 25, 40].flatMap { length in
        let plain = (0..<length).map { UInt8(ascii: "a") + UInt8($0 % 26) }
        return [(plain, String(decoding: plain, as: UTF8.self))] + [0, length / 2, length - 1].flatMap { position in
            [(UInt8(ascii: "\""), "\""), (0x0A, "\n"), (0xFF, "\u{FFFD}")].map { (byte, decoded) in
                var bytes = plain
                bytes[position] = byte
                var expected = String(decoding: plain, as: UTF8.self).unicodeScalars.map(String.init)
                expected[position] = decoded
                return (bytes, expected.joined())
            }
        }
    }

    @Test(arguments: cases + lengthCases)
    func jsonEscapingRoundTrips(input: [UInt8], expected: String) throws {
        let writer = ByteWriter(capacity: 8)
        writer.append("{\"k\":\"")
        input.withUnsafeBufferPointer { writer.appendEscaped($0, mode: .json) }
        writer.append("\"}")
        let data = Data(writer.bytes)
        #expect(String(data: data, encoding: .utf8) != nil, "output must be valid UTF-8")
        let object = try JSONSerialization.jsonObject(with: data) as? [String: String]
        #expect(object?["k"] == expected)
    }

    @Test(arguments: cases)
    func textEscapingKeepsOneLine(input: [UInt8], expected: String) {
        let writer = ByteWriter(capacity: 8)
        input.withUnsafeBufferPointer { writer.appendEscaped($0, mode: .text) }
        let text = String(decoding: writer.bytes, as: UTF8.self)
        #expect(!text.contains("\n") && !text.contains("\r"))
        #expect(String(validatingUTF8: Array(writer.bytes).map { CChar(bitPattern: $0) } + [0]) != nil)
    }

    /// What a terminal could act on (C0, DEL, C1), each one `?` in a text line.
    static let controls: [[UInt8]] = [[0x1B], [0x07], [0x08], [0x0D], [0x0A], [0x09], [0x00], [0x1F], [0x7F],
                                      [0xC2, 0x80], [0xC2, 0x9B], [0xC2, 0x9F]]
    /// What a text line keeps as it is: NBSP (the first character after C1), other UTF-8, quote, backslash.
    static let kept: [[UInt8]] = [[0xC2, 0xA0], Array("é".utf8), Array("世".utf8), Array("😀".utf8),
                                  Array("\"".utf8), Array("\\".utf8), Array("~".utf8)]

    /// Every control, and every kept character, at every position of strings around the word sizes
    /// the fast path checks: before, on and after each 8-byte boundary, and in the overlapping last word.
    @Test func textModeReplacesEveryControlAtEveryPosition() {
        for length in [1, 7, 8, 9, 15, 16, 17, 23, 24, 25, 33] {
            let plain = (0..<length).map { UInt8(ascii: "a") + UInt8($0 % 26) }
            for position in 0..<length {
                let inserts = Self.controls.map { ($0, Array("?".utf8)) } + Self.kept.map { ($0, $0) }
                for (inserted, shown) in inserts {
                    let input = Array(plain[..<position]) + inserted + plain[(position + 1)...]
                    let expected = Array(plain[..<position]) + shown + plain[(position + 1)...]
                    let writer = ByteWriter(capacity: 8)
                    input.withUnsafeBufferPointer { writer.appendEscaped($0, mode: .text) }
                    #expect(Array(writer.bytes) == expected, "\(inserted) at \(position) of \(length)")
                }
            }
        }
    }

    @Test func textModeDefusesTerminalSequences() {
        let cases: [(String, String)] = [
            ("/a\u{1B}]52;c;ZXZpbA==\u{07}b", "/a?]52;c;ZXZpbA==?b"),                      // OSC 52: the clipboard
            ("\u{1B}]8;;http://evil\u{1B}\\x\u{1B}]8;;\u{1B}\\", "?]8;;http://evil?\\x?]8;;?\\"),  // OSC 8: a link
            ("ua\u{1B}[2J\u{1B}[H", "ua?[2J?[H"),                                        // clear the screen
            ("id\r\nforged 200 line\u{08}\u{08}", "id??forged 200 line??"),
            ("\u{9B}31mred\u{9D}0;title\u{9C}", "?31mred?0;title?"),                       // C1 CSI, OSC, ST
            ("del\u{7F}\u{7F}é\u{A0}😀", "del??é\u{A0}😀"),
        ]
        for (input, expected) in cases {
            let writer = ByteWriter(capacity: 8)
            Array(input.utf8).withUnsafeBufferPointer { writer.appendEscaped($0, mode: .text) }
            #expect(String(decoding: writer.bytes, as: UTF8.self) == expected)
        }
    }

    @Test func timestampsAndDurations() {
        let writer = ByteWriter()
        writer.appendTimestamp(seconds: 0, nanos: 0)
        writer.append(" ")
        writer.appendTimestamp(seconds: 951_782_400, nanos: 999_999_999)  // 2000-02-29
        writer.append(" ")
        writer.appendTimestamp(seconds: 1_764_226_688, nanos: 123_456_789)
        writer.append(" ")
        writer.appendMilliseconds(seconds: 1, nanos: 8_000)
        writer.append(" ")
        writer.appendMilliseconds(seconds: 0, nanos: 999)
        #expect(String(decoding: writer.bytes, as: UTF8.self)
            == "1970-01-01T00:00:00.000000Z 2000-02-29T00:00:00.999999Z 2025-11-27T06:58:08.123456Z 1000.008 0.000")
    }

    @Test func decimals() {
        let writer = ByteWriter(capacity: 1)
        for value: UInt64 in [0, 7, 10, 99, 100, 18_446_744_073_709_551_615] {
            writer.appendDecimal(value)
            writer.append(",")
        }
        #expect(String(decoding: writer.bytes, as: UTF8.self) == "0,7,10,99,100,18446744073709551615,")
    }
}
