import ALSTapFormats
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// What `alstap tap` does with each JSON line, however it came (a server's stream, or a capture
/// read back through the engine): notices to stderr, entries as text, wide, JSON or HAR.
final class TapDisplay {
    enum Style: String, CaseIterable {
        case text, wide, json, har
    }

    private let style: Style
    private let formatter: TapFormatter
    private let max: Int?
    private let decoder = JSONDecoder()
    private var har = HARWriter()
    private(set) var printed = 0
    /// Partial line of `write(bytes:)`.
    private var pending: [UInt8] = []

    /// Every line is written at once (a live tap piped to `grep` or `jq` must not wait for a block).
    private let live: Bool

    init(style: Style, max: Int?, live: Bool) {
        self.style = style
        self.max = max
        self.live = live
        let color = isatty(STDOUT_FILENO) == 1 && getenv("NO_COLOR") == nil
        formatter = TapFormatter(style: style == .wide ? .wide : .text, color: color)
        if style == .har { out(HARWriter.head) }
    }

    /// Ends the output (HAR's closing brackets) and writes what is buffered.
    func finish() {
        if style == .har { out(HARWriter.tail) }
        flush()
    }

    /// One line; false once `--max` entries were shown.
    func show(_ line: Substring) -> Bool {
        if style == .har {
            guard let value = try? decoder.decode(JSONValue.self, from: Data(line.utf8)) else { return true }
            if let type = value["type"]?.string, !["http", "tcp", "pair"].contains(type) {
                note(try? decoder.decode(TapEntry.self, from: Data(line.utf8)))
                return true
            }
            if let text = har.entry(value) {
                out(text)
                printed += 1
            }
            return max.map { printed < $0 } ?? true
        }
        guard let entry = try? decoder.decode(TapEntry.self, from: Data(line.utf8)) else { return true }
        if note(entry) { return true }
        out((style == .json ? TerminalText.safeJSON(line) : formatter.format(entry)) + "\n")
        printed += 1
        return max.map { printed < $0 } ?? true
    }

    /// Bytes of whole and partial lines (a capture read back): each whole line shown; false
    /// once `--max` entries were. JSON without `--max` goes out as it is, in large writes,
    /// unless it holds what `safeJSON` escapes.
    func write(bytes: UnsafeRawBufferPointer) -> Bool {
        if style == .json && max == nil && pending.isEmpty && bytes.last == UInt8(ascii: "\n")
            && !TerminalText.hasRawControls(bytes) {
            buffered.append(contentsOf: bytes)
            if buffered.count >= 1 << 16 { flush() }
            return true
        }
        pending.append(contentsOf: bytes)
        var start = 0
        defer { pending.removeFirst(start) }
        while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: pending[start..<newline], as: UTF8.self)
            start = newline + 1
            if !show(line[...]) { return false }
        }
        return true
    }

    /// A notice line goes to stderr: true when `entry` was one.
    @discardableResult
    private func note(_ entry: TapEntry?) -> Bool {
        guard let entry else { return false }
        switch entry.type {
        case "lost" where entry.reason == "rate":
            TerminalText.note("tap", "\(entry.count ?? 0) entries skipped over --max-rps")
        case "lost":
            TerminalText.note("tap", "\(entry.count ?? 0) entries lost: this client read too slowly")
        case "shutdown":
            TerminalText.note("tap", "the server is shutting down")
        case "notice":
            TerminalText.note("tap", "peer \(entry.peer ?? "?"): \(entry.message ?? "")")
        default:
            return false
        }
        return true
    }

    /// Output waiting for one large write (a terminal gets every line at once).
    private var buffered: [UInt8] = []

    private func out(_ text: String) {
        buffered.append(contentsOf: text.utf8)
        if live || TerminalText.isTerminal || buffered.count >= 1 << 16 { flush() }
    }

    private func flush() {
        var offset = 0
        buffered.withUnsafeBytes { bytes in
            while offset < bytes.count {
                let count = Glibc.write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { exit(0) }  // the reader is gone (a closed pipe)
                offset += count
            }
        }
        buffered.removeAll(keepingCapacity: true)
    }
}
