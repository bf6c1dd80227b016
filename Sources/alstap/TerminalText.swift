#if canImport(Glibc)
import Glibc
#endif

/// Text from the server (paths, user agents, ids, names, error bodies) made safe for a terminal,
/// where a control character is a command: ESC starts a sequence that can clear the screen, set
/// the clipboard (OSC 52) or hide a link (OSC 8), BEL rings, BS and CR rewrite what is shown, LF
/// forges a line. The only escapes alstap writes are its own (colors, `top`'s screen control).
enum TerminalText {
    /// Standard output is a terminal (flushed after every line; otherwise written in blocks).
    static let isTerminal = isatty(STDOUT_FILENO) == 1

    /// Whether UTF-8 `bytes` hold DEL or a C1 character, which `safeJSON` escapes (JSON lines
    /// hold no raw C0).
    static func hasRawControls(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var previous: UInt8 = 0
        for byte in bytes {
            if byte == 0x7F || (previous == 0xC2 && (0x80...0x9F).contains(byte)) { return true }
            previous = byte
        }
        return false
    }

    /// C0 (U+0000–U+001F, TAB, CR and LF among them), DEL and C1 (U+0080–U+009F, CSI U+009B
    /// among them): what a terminal may act on instead of showing.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// `text` as a terminal shows it, on one line: every control character becomes `?`, as in
    /// the server's `format=text`.
    static func safe<S: StringProtocol>(_ text: S) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return String(text) }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars { out.append(isControl(scalar) ? "?" : scalar) }
        return String(out)
    }

    /// A server JSON line as an equal JSON text without control characters: DEL and C1, which
    /// JSON allows raw in strings (and nowhere else), become `\u00XX` escapes; C0, which a line
    /// that parsed can hold only as whitespace between tokens (TAB, CR), becomes a space.
    static func safeJSON(_ line: Substring) -> String {
        guard line.unicodeScalars.contains(where: isControl) else { return String(line) }
        var out = String.UnicodeScalarView()
        for scalar in line.unicodeScalars {
            if scalar.value < 0x20 {
                out.append(" ")
            } else if isControl(scalar) {
                out.append(contentsOf: "\\u00\(String(scalar.value, radix: 16))".unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// `alstap COMMAND: message` on stderr, one line; `message` may carry the server's text (an
    /// error body, a peer's notice).
    static func note(_ command: String, _ message: String) {
        let bytes = Array("alstap \(command): \(safe(message))\n".utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
