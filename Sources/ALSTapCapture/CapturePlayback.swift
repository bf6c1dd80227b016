import ALSTapALS
import ALSTapCore
import ALSTapFilter
import ALSTapFormats
import ALSTapMetrics

/// Reads a capture back through the server's own engine, so `alstap tap -r FILE` prints what a
/// live `/tap` subscriber with the same query got: each entries record is decoded by
/// `ALSDecoder` as the server decodes Envoy's messages, and offered to a `TapHub` with one
/// `Subscriber` that has the query's filter, pairing, mask and format. Time is the records'
/// receive time (the pairing window runs on it). No I/O: bytes in, the subscriber's bytes out.
public final class CapturePlayback {
    /// What reading found besides entries.
    public enum Note: Equatable {
        /// The header's writer (`alstap 0.9.0`).
        case header(writer: String)
        /// A notice the capture recorded (its JSON): entries the recording tap lost, say.
        case notice(String)
        /// An entries record whose message does not decode: skipped, the rest is read.
        case skipped(record: Int, reason: String)
    }

    private var reader = CaptureReader()
    private let decoder: ALSDecoder
    private let query: TapQuery
    private let since: CaptureTime?
    private let until: CaptureTime?
    private let pairWindowNanos: UInt64
    /// Made at the first entries record, whose day a time of day (`--since 10:05`) is on.
    private var engine: (hub: TapHub, subscriber: Subscriber)?
    private var reporter = Reporter()
    private let output: (UnsafeRawBufferPointer) -> Void
    private let onNote: (Note) -> Void
    /// The latest receive time so far, in nanoseconds (the pairing window's clock never goes back).
    private var nowNanos: UInt64 = 0
    public private(set) var entriesRead = 0
    /// Nothing was read at all: not even a whole header.
    public var isEmpty: Bool { !sawHeader }
    private var sawHeader = false
    /// Records read so far (the reader is busy while its events are handled).
    private var records = 0
    private var lastExpiryNanos: UInt64 = 0

    /// `query`: the tap's query (its `format`, filter, `pair`, `fields`); `since` / `until`:
    /// bounds on the entries' start time, added to its filter; `pairWindowNanos`: as the
    /// server's `--pair-window`.
    public init(query: TapQuery, since: CaptureTime? = nil, until: CaptureTime? = nil,
                pairWindowNanos: UInt64 = 2_000_000_000,
                output: @escaping (UnsafeRawBufferPointer) -> Void, onNote: @escaping (Note) -> Void = { _ in }) {
        decoder = ALSDecoder(redactedHeaders: Self.redactedHeaders, limits: Self.limits)
        self.query = query
        self.since = since
        self.until = until
        self.pairWindowNanos = pairWindowNanos
        self.output = output
        self.onNote = onNote
    }

    private func makeEngine(day receivedMicros: Int64) -> (hub: TapHub, subscriber: Subscriber) {
        let counters = Counters()
        var clauses = query.filter?.clauses ?? []
        if let since { clauses.append(.startedFrom(since.micros(onTheDayOf: receivedMicros))) }
        if let until { clauses.append(.startedUntil(until.micros(onTheDayOf: receivedMicros))) }
        let filter = clauses.isEmpty ? nil : TapFilter(clauses: clauses)
        // The clock is the rate limit's, which a playback has not (`max_rps` is the server's).
        let subscriber = Subscriber(format: query.format, filter: filter, pairs: query.pair,
                                    fields: query.fields.map { ($0, MaskedLines()) },
                                    capacityLines: .max, counters: counters, clock: { 0 })
        // The server's default bounds of the pair table.
        let hub = TapHub(limits: TapLimits(maxSubscribers: 1, pairWindowNanos: pairWindowNanos, pairTableSize: 50_000,
                                           pairTableBytes: 32 << 20),
                         counters: counters, ring: ReplayRing(capacityEntries: 0, section: OneThread()), demand: nil) { _, _, _ in nil }
        _ = hub.open(subscriber, last: 0, follow: true)
        return (hub, subscriber)
    }

    /// A capture holds what some server accepted, perhaps with larger `--max-entries-per-message`
    /// or `--max-unpacked-bytes` than the defaults: the reader takes up to its own record bound.
    static let limits: DecodeLimits = {
        var limits = DecodeLimits()
        limits.maxEntries = 1 << 20
        limits.maxUnpackedBytes = CaptureFile.maxRecordBytes * 4
        return limits
    }()
    /// How often waiting halves are expired, in capture time (the server's loop ticks at 250 ms).
    static let expireEveryNanos: UInt64 = 250_000_000

    /// The server's default `--redact-header` list: a capture holds what its server redacted
    /// already; these stay hidden whatever the capture came from.
    public static let redactedHeaders = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"]

    /// Reads `bytes` (any piece of the file); throws `CaptureReader.Failure` for input that is
    /// not a capture (a record whose message does not decode is skipped, and noted).
    public func feed(_ bytes: UnsafeRawBufferPointer) throws {
        try reader.feed(bytes) { event in
            if case .header = event {} else { records += 1 }  // kinds the reader skips are not numbered
            switch event {
            case .header(_, let writer):
                sawHeader = true
                onNote(.header(writer: writer))
            case .notice(let json): onNote(.notice(String(decoding: json, as: UTF8.self)))
            case .entries(let micros, let message): play(message, receivedMicros: micros)
            }
        }
    }

    /// The input ended: what is still waiting for a twin comes out alone, everything is written.
    /// Returns what was cut short after the last whole record (nil: nothing).
    public func finish() -> String? {
        engine?.hub.expirePairs(now: .max)
        drain()
        return reader.finish()
    }

    private func play(_ message: UnsafeRawBufferPointer, receivedMicros: Int64) {
        nowNanos = max(nowNanos, UInt64(clamping: receivedMicros) &* 1000)
        if engine == nil { engine = makeEngine(day: receivedMicros) }
        let (hub, subscriber) = engine!
        let needs = subscriber.needs
        let batch: EncodedBatch
        do {
            batch = try decoder.decode(message, reporter: &reporter, formats: needs.formats, facts: needs.facts,
                                       decodedAtNanos: nowNanos)
        } catch {
            onNote(.skipped(record: records, reason: error.message))
            return
        }
        entriesRead += batch.entryCount
        if nowNanos >= lastExpiryNanos &+ Self.expireEveryNanos {
            lastExpiryNanos = nowNanos
            hub.expirePairs(now: nowNanos)
        }
        hub.deliver([batch], dropped: 0, now: nowNanos)
        drain()
    }

    /// Hands everything the subscriber queued to `output`.
    private func drain() {
        guard let subscriber = engine?.subscriber else { return }
        var written = 0
        subscriber.forEachQueuedSlice { slice in
            output(slice)
            written += slice.count
            return true
        }
        subscriber.consume(written)
    }
}
