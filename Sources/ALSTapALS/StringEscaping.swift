#if canImport(Glibc)
import Glibc
#endif
/// How untrusted strings from Envoy are made safe for an output line.
public enum EscapeMode {
    /// JSON string content: quotes, backslashes and control bytes escaped.
    case json
    /// A readable text line: every control character (C0 such as LF, ESC or BEL, DEL, and C1,
    /// U+0080–U+009F) becomes one `?`, so one entry stays one line and a terminal shows it as text.
    case text
}

extension ByteWriter {
    /// Appends `"…"` with the content escaped for JSON.
    @inline(__always)
    public func appendJSONString(_ cString: UnsafePointer<CChar>) {
        append(UInt8(ascii: "\""))
        appendEscaped(cString, mode: .json)
        append(UInt8(ascii: "\""))
    }

    /// Appends a NUL-terminated string escaped for `mode`.
    @inline(__always)
    public func appendEscaped(_ cString: UnsafePointer<CChar>, mode: EscapeMode) {
        let bytes = UnsafeRawPointer(cString).assumingMemoryBound(to: UInt8.self)
        appendEscaped(UnsafeBufferPointer(start: bytes, count: protobufStringLength(cString)), mode: mode)
    }

    /// Appends untrusted bytes escaped for `mode`: clean runs are copied in bulk; invalid UTF-8
    /// becomes U+FFFD, so every line is valid UTF-8 whatever bytes Envoy sent.
    public func appendEscaped(_ input: UnsafeBufferPointer<UInt8>, mode: EscapeMode) {
        // One copy of the loop per mode, each with its mode a constant, so the checks one mode
        // needs cost the other nothing.
        switch mode {
        case .json: appendEscaped(input, as: .json)
        case .text: appendEscaped(input, as: .text)
        }
    }

    @inline(__always)
    private func appendEscaped(_ input: UnsafeBufferPointer<UInt8>, as mode: EscapeMode) {
        guard let start = input.baseAddress else { return }
        let length = input.count
        // The usual case, a plain string: checked 8 bytes at a time (the last word overlapping
        // the one before), then copied at once.
        var i = 0
        while i + 8 <= length && Self.isPlain(UnsafeRawPointer(start + i), mode: mode) { i += 8 }
        if i == length
            || (i > 0 && i + 8 > length && Self.isPlain(UnsafeRawPointer(start + length - 8), mode: mode)) {
            appendShort(start, count: length)
            return
        }
        // Out of line, so the fast path above stays small.
        switch mode {
        case .json: appendEscapedJSON(start, length: length, from: i)
        case .text: appendEscapedText(start, length: length, from: i)
        }
    }

    @inline(never)
    private func appendEscapedJSON(_ start: UnsafePointer<UInt8>, length: Int, from first: Int) {
        appendEscaped(start, length: length, from: first, mode: .json)
    }

    @inline(never)
    private func appendEscapedText(_ start: UnsafePointer<UInt8>, length: Int, from first: Int) {
        appendEscaped(start, length: length, from: first, mode: .text)
    }

    /// The general case, from `i` (everything before it is plain).
    @inline(__always)
    private func appendEscaped(_ start: UnsafePointer<UInt8>, length: Int, from first: Int, mode: EscapeMode) {
        var runStart = 0
        var i = first
        while i < length {
            if i + 8 <= length && Self.isPlain(UnsafeRawPointer(start + i), mode: mode) {
                i += 8
                continue
            }
            let byte = start[i]
            if Self.isPlain(byte, mode: mode) {
                i += 1
                continue
            }
            if byte >= 0x80 {
                let width = Self.validUTF8SequenceLength(start + i, available: length - i)
                // A C1 control (U+0080–U+009F, C2 80…C2 9F) is as much a terminal control as ESC:
                // one `?` in a text line. JSON allows it raw.
                if width == 2 && mode == .text && byte == 0xC2 && start[i + 1] < 0xA0 {
                    if i > runStart { append(start + runStart, count: i - runStart) }
                    append(UInt8(ascii: "?"))
                    i += 2
                    runStart = i
                    continue
                }
                if width > 0 {
                    i += width
                    continue
                }
            }
            if i > runStart { append(start + runStart, count: i - runStart) }
            appendReplacement(for: byte, mode: mode)
            i += 1
            runStart = i
        }
        if length > runStart { append(start + runStart, count: length - runStart) }
    }

    private func appendReplacement(for byte: UInt8, mode: EscapeMode) {
        if byte >= 0x80 {
            append(0xEF); append(0xBF); append(0xBD)  // U+FFFD REPLACEMENT CHARACTER
            return
        }
        switch (mode, byte) {
        case (.text, _): append(UInt8(ascii: "?"))
        case (.json, 0x22): append("\\\"")
        case (.json, 0x5C): append("\\\\")
        case (.json, 0x0A): append("\\n")
        case (.json, 0x0D): append("\\r")
        case (.json, 0x09): append("\\t")
        case (.json, _):
            let hex: StaticString = "0123456789abcdef"
            append("\\u00")
            append(hex.utf8Start[Int(byte >> 4)])
            append(hex.utf8Start[Int(byte & 0xF)])
        }
    }

    /// True when `byte` is copied as it is: printable ASCII, in JSON other than a quote or a
    /// backslash, in text other than DEL.
    @inline(__always)
    static func isPlain(_ byte: UInt8, mode: EscapeMode) -> Bool {
        switch mode {
        case .json: byte >= 0x20 && byte < 0x80 && byte != 0x22 && byte != 0x5C
        case .text: byte >= 0x20 && byte < 0x7F
        }
    }

    /// True when none of the 8 bytes at `p` needs attention: no control byte and no non-ASCII
    /// byte; in JSON no quote or backslash, in text no DEL (SWAR: each test sets a byte's high
    /// bit when that byte matches).
    @inline(__always)
    static func isPlain(_ p: UnsafeRawPointer, mode: EscapeMode) -> Bool {
        let word = p.loadUnaligned(as: UInt64.self)
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func hasZeroByte(_ v: UInt64) -> UInt64 { (v &- ones) & ~v & highs }
        let control = (word &- 0x2020_2020_2020_2020) & ~word & highs
        switch mode {
        case .json:
            let quote = hasZeroByte(word ^ 0x2222_2222_2222_2222)
            let backslash = hasZeroByte(word ^ 0x5C5C_5C5C_5C5C_5C5C)
            return (word & highs) | control | quote | backslash == 0
        case .text:
            // Adding 1 to every byte carries DEL (0x7F) into its high bit; a byte's carry out
            // reaches the next byte only from 0xFF, whose own high bit already fails the word.
            return (word | (word &+ ones)) & highs | control == 0
        }
    }

    /// The length of the valid UTF-8 sequence starting at `p` (RFC 3629), or 0 if invalid.
    @inline(__always)
    static func validUTF8SequenceLength(_ p: UnsafePointer<UInt8>, available: Int) -> Int {
        let b0 = p[0]
        @inline(__always) func isContinuation(_ b: UInt8) -> Bool { b & 0xC0 == 0x80 }
        switch b0 {
        case 0xC2...0xDF:
            return available >= 2 && isContinuation(p[1]) ? 2 : 0
        case 0xE0...0xEF:
            guard available >= 3, isContinuation(p[1]), isContinuation(p[2]) else { return 0 }
            if b0 == 0xE0 && p[1] < 0xA0 { return 0 }  // overlong
            if b0 == 0xED && p[1] > 0x9F { return 0 }  // surrogates
            return 3
        case 0xF0...0xF4:
            guard available >= 4, isContinuation(p[1]), isContinuation(p[2]), isContinuation(p[3]) else { return 0 }
            if b0 == 0xF0 && p[1] < 0x90 { return 0 }  // overlong
            if b0 == 0xF4 && p[1] > 0x8F { return 0 }  // above U+10FFFF
            return 4
        default:
            return 0
        }
    }
}
