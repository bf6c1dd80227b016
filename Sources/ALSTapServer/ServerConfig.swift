import ALSTapALS
import ALSTapHTTP2
import ALSTapSystem

/// Everything `alstap serve` can be told.
public struct ServerConfig: Sendable {
    public var alsListen = ListenAddress(host: "0.0.0.0", port: 9001)
    public var httpListen = ListenAddress(host: "0.0.0.0", port: 9002)
    public var threads = 1
    /// The largest gRPC message accepted (gRPC's default, 4 MiB).
    public var maxMessageBytes = 4 << 20
    /// Nesting depth, entries per message and the memory one message may take decoded.
    public var decodeLimits = DecodeLimits()
    /// Bytes of gRPC messages still arriving (split over DATA frames), all streams together;
    /// a stream that would pass it ends with RESOURCE_EXHAUSTED.
    public var maxBufferedMessageBytes = 32 << 20
    /// HTTP/2 streams open at once on all connections together; more are reset (REFUSED).
    public var maxStreams = 16_384
    /// Lines a subscriber may have queued before new ones are dropped for it.
    public var subscriberQueueLines = 8_192
    /// Bytes a subscriber's queue may pin (whole shared batches: a batch stays in memory while
    /// any of its lines is queued)...
    public var subscriberQueueBytes = 16 << 20
    /// ...and all subscribers' queues together.
    public var subscribersQueueBytes = 64 << 20
    /// Entries waiting for one loop's subscribers before they are dropped (cross-thread hand-off bound).
    public var loopInboxEntries = 16_384
    /// ...and bytes of their lines.
    public var loopInboxBytes = 32 << 20
    /// Largest HTTP/1.1 request head; larger gets 431 and a close.
    public var maxHeadBytes = 16 * 1024
    /// A client must finish its request head (or HTTP/2 preface) within this time.
    public var headTimeoutMillis: UInt64 = 5_000
    public var http2 = HTTP2ServerSettings()
    /// Open connections on both listeners together; more are accepted and closed at once.
    public var maxConnections = 10_000
    /// How long a request's half waits for its twin before it is emitted alone.
    public var pairWindowMillis: UInt64 = 2_000
    /// Requests waiting for their twin, per loop with pairing subscribers; more are emitted alone.
    public var pairTableSize = 50_000
    /// Bytes of batches the waiting halves keep alive, all loops together; more come out alone.
    public var pairTableBytes = 32 << 20
    /// The replicas a `scope=cluster` tap reads (nil: cluster scope is off).
    public var peers: PeerSpec?
    /// A cluster tap orders entries by start time within this window...
    public var mergeWindowMillis: UInt64 = 1_000
    /// ...holding at most this many (Hubble Relay's defaults).
    public var mergeWindowEntries = 100
    /// Entries kept for `last=K` replays (0: off)...
    public var replayEntries = 2_000
    /// ...in at most this many bytes of messages.
    public var replayBytes = 16 << 20
    /// Tap subscribers; more get 503.
    public var maxSubscribers = 1000
    /// Groups one `/top` aggregate keeps; beyond, entries go to its `other` row.
    public var topGroups = 10_000
    /// Bytes all `/top` aggregates together hold (groups, labels, per-second measures); beyond,
    /// new groups go to their `other` rows.
    public var topBytes = 64 << 20
    /// When set, the HTTP listener wants `Authorization: Bearer <token>` (not on health probes).
    public var tapToken: String?
    /// When set, ALS streams want `authorization: Bearer <token>` in their gRPC metadata.
    public var alsToken: String?
    /// Lowercased header names whose values every output shows as `[redacted]`.
    public var redactedHeaders = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"]

    /// alstap ends an ingest stream after this long (give or take 10 %), between two messages,
    /// so Envoy reconnects through the Service and load spreads over new replicas (0: never).
    public var maxStreamAgeMillis: UInt64 = 30 * 60 * 1000
    /// `/readyz` fails while the resident set is over this (0: no bound).
    public var readyMaxMemoryBytes = 0

    public init() {}

    var streamAge: StreamAge { StreamAge(maxNanos: maxStreamAgeMillis * 1_000_000) }
}

/// What a listener serves. Each port has one job, so a NetworkPolicy can open ingest to every
/// pod and keep the tap for a few; one address named for both takes both (a local setup).
struct ListenerRole: OptionSet, Sendable {
    let rawValue: UInt8
    /// gRPC ingest services (Envoy's AccessLogService).
    static let ingest = ListenerRole(rawValue: 1)
    /// The tap API, the web UI, health and metrics.
    static let tap = ListenerRole(rawValue: 2)
}
