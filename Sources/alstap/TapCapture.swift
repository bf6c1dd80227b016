import ALSTapCapture
import ALSTapFilter
import ALSTapFormats
import ALSTapHTTP1
import ALSTapSystem
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double { Double(monotonicNanos()) / 1e9 }

/// `alstap tap -w FILE` and `-r FILE`: recording a server's `format=capture` stream, whole
/// records only, and reading a capture back through the server's engine (`CapturePlayback`).
enum TapCapture {
    /// Set by SIGINT / SIGTERM: the loops stop between two reads (a capture keeps whole records,
    /// a HAR document gets its end).
    nonisolated(unsafe) private static var stop: sig_atomic_t = 0

    /// Without SA_RESTART: a blocking connect or read returns at the signal instead of waiting.
    static func stopOnSignals() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in TapCapture.stop = 1 }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
    }

    static func stopRequested() -> Bool { stop != 0 }

    /// `100M`, `2G`, `4096` (powers of 1024).
    static func bytes(_ text: String) -> Int? {
        TapQuery.byteCount(text).flatMap { $0 > 0 && $0 < 1 << 50 ? Int($0) : nil }
    }

    /// `90s`, `10m`, `1h`, `1.5s`, `500ms`, or plain seconds.
    static func seconds(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        let (number, scale) = units.first { text.hasSuffix($0.0) }.map { (String(text.dropLast($0.0.count)), $0.1) } ?? (text, 1)
        guard let value = Double(number), value > 0, value.isFinite else { return nil }
        return value * scale
    }

    /// The query a capture is read back with: JSON lines (the CLI formats them), the filters,
    /// `--pair` and `--fields`, checked by the server's own parser.
    static func localQuery(filters: TapFilters, pair: Bool, fields: String?) throws -> TapQuery {
        var items = [("format", "json")] + filters.queryItems
        if pair { items.append(("pair", "1")) }
        if let fields { items.append(("fields", fields)) }
        do {
            return try TapQuery(RequestTarget("/tap?" + TapClient.query(items)).query)
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// Reads `path` through the engine into `display`. A file that is not a capture (or of a
    /// newer version) is exit 2; one cut short is read up to its last whole record, with a note.
    static func read(path: String, query: TapQuery, since: CaptureTime?, until: CaptureTime?, display: TapDisplay) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            TerminalText.note("tap", "cannot open \(path): \(String(cString: strerror(errno)))")
            throw ExitCode(2)
        }
        defer { Glibc.close(fd) }
        stopOnSignals()
        var more = true
        let playback = CapturePlayback(query: query, since: since, until: until,
                                       output: { bytes in if more { more = display.write(bytes: bytes) } },
                                       onNote: note)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        do {
            while more && !stopRequested() {
                let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
                guard count > 0 else {
                    if count < 0 && errno == EINTR { continue }
                    break
                }
                try playback.feed(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            }
        } catch {
            display.finish()
            TerminalText.note("tap", "\(path): \(error)")
            throw ExitCode(2)
        }
        let cut = more && !stopRequested() ? playback.finish() : nil
        display.finish()
        if playback.isEmpty {
            TerminalText.note("tap", "\(path): \(cut ?? "empty: not an alstap capture")")
            throw ExitCode(2)
        }
        if let cut { TerminalText.note("tap", "\(path): \(cut); read up to there") }
    }

    private static func note(_ note: CapturePlayback.Note) {
        switch note {
        case .header: break
        case .notice(let json): TerminalText.note("tap", "the capture says: \(json)")
        case .skipped(let record, let reason): TerminalText.note("tap", "record \(record) skipped: \(reason)")
        }
    }

    /// Streams `/tap?<items>` (format=capture) into `path`, whole records only, until
    /// `maxBytes`, `deadline`, a signal, or (with `endsWithReplay`) the end of the replay; with
    /// `show`, every record is also shown through the engine. A lost server is reconnected: the
    /// new stream's header is not written again, and it asks for what the server received
    /// since the last record written (`since=`, instead of any `last`), so nothing repeats.
    static func record(path: String, client: TapClient, items: [(String, String)], maxBytes: Int?, deadline: Double?,
                       show: (query: TapQuery, display: TapDisplay)?, endsWithReplay: Bool) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            TerminalText.note("tap", "cannot write \(path): \(String(cString: strerror(errno)))")
            throw ExitCode(2)
        }
        defer { Glibc.close(fd) }
        stopOnSignals()
        var written = 0
        var entries = 0
        var headerWritten = false
        var lastReceivedMicros: Int64?
        var ended: String?  // why it stopped, when not a signal or the duration
        let playback = show.map { show in
            CapturePlayback(query: show.query, output: { _ = show.display.write(bytes: $0) }, onNote: note)
        }
        var backoff = TapClient.Backoff()
        func over() -> Bool { ended != nil || stopRequested() || deadline.map { monotonicSeconds() >= $0 } == true }
        while !over() {
            var query = items
            if headerWritten {
                query.removeAll { $0.0 == "last" }
                if let lastReceivedMicros { query.append(("since", TapQuery.sinceText(lastReceivedMicros + 1))) }
            }
            var reader = CaptureReader()
            // This connection's stream: `received` holds it from offset `base`; `flushed` is how
            // far it went to the file (a header after the first is skipped, not written).
            var received: [UInt8] = []
            var base = 0
            var flushed = 0
            let skipsHeader = headerWritten
            do {
                try client.streamRaw(query: TapClient.query(query), deadline: deadline, shouldStop: over) { bytes in
                    backoff.reset()
                    received += bytes
                    do {
                        try bytes.withUnsafeBytes { chunk in
                            try reader.feed(chunk) { event in
                                if case .entries(let micros, _) = event {
                                    entries += 1
                                    lastReceivedMicros = micros
                                }
                            }
                        }
                    } catch {
                        ended = "the server's capture stream is broken: \(error)"
                        return false
                    }
                    // Whole records only: the reader says where the last whole one ended.
                    let whole = reader.consumed
                    if skipsHeader && flushed == 0 && whole > 0 { flushed = headerLength(received) }
                    if whole > flushed {
                        let ok = received.withUnsafeBytes { all in
                            let slice = UnsafeRawBufferPointer(rebasing: all[(flushed - base)..<(whole - base)])
                            guard writeAll(fd, slice) else { return false }
                            // What the file gets is what is shown: the same records, read back.
                            try? playback?.feed(slice)
                            return true
                        }
                        guard ok else {
                            // Half a record would spoil every record after it: the file ends at the last whole one.
                            _ = ftruncate(fd, off_t(written))
                            ended = "cannot write \(path): \(String(cString: strerror(errno)))"
                            return false
                        }
                        written += whole - flushed
                        flushed = whole
                        headerWritten = true
                    }
                    received.removeFirst(max(0, min(received.count, whole - base)))
                    base = max(base, whole)
                    if let maxBytes, written >= maxBytes { ended = "--max-size reached" }
                    return !over()
                }
                if ended == nil && !stopRequested() && deadline.map({ monotonicSeconds() >= $0 }) != true { ended = "the stream ended" }
            } catch .lost where endsWithReplay {
                ended = "the replay ended"
            } catch .rejected(let status, let body) {
                TerminalText.note("tap", "\(body) (HTTP \(status))")
                throw ExitCode(2)
            } catch {
                if over() { break }
                TerminalText.note("tap", "\(error) (\(client.server)); reconnecting in \(backoff.delay)s, the capture goes on")
                usleep(useconds_t(backoff.next() * 1_000_000))
            }
        }
        _ = playback?.finish()
        let reason = ended ?? (stopRequested() ? "stopped" : "--duration reached")
        TerminalText.note("tap", "\(path): \(written) bytes, \(entries) records of entries (\(reason))")
        if ended?.hasPrefix("cannot write") == true || ended?.hasPrefix("the server's") == true { throw ExitCode(1) }
    }

    /// Writes all of `bytes`; false on an error (errno says which).
    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            offset += count
        }
        return true
    }

    /// The length of a capture header at the start of `bytes` (0 if it is not one yet).
    private static func headerLength(_ bytes: [UInt8]) -> Int {
        let magic = CaptureFile.magic.count
        guard bytes.count >= magic + 4 else { return 0 }
        return magic + 4 + (Int(bytes[magic + 2]) << 8 | Int(bytes[magic + 3]))
    }
}
