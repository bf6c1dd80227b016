import ArgumentParser
import Testing

@testable import alstap

/// `--help` is the CLI's documentation: these goldens catch an option, default or variable
/// changed by accident. After a deliberate change, regenerate the literal with
/// `COLUMNS=100 swift run --scratch-path .build-cli alstap serve --help` (or `tap --help`, `top --help`) and
/// paste the output between its quotes.
@Suite struct HelpGoldenTests {
    @Test func serveHelp() {
        let help = AlsTap.helpMessage(for: AlsTap.Serve.self, columns: 100)
        #expect(help == Self.serve, "alstap serve --help changed: \(Self.firstDifference(help, Self.serve)); if on purpose, regenerate HelpGoldenTests.serve (see the comment above)")
    }

    @Test func tapHelp() {
        let help = AlsTap.helpMessage(for: AlsTap.Tap.self, columns: 100)
        #expect(help == Self.tap, "alstap tap --help changed: \(Self.firstDifference(help, Self.tap)); if on purpose, regenerate HelpGoldenTests.tap (see the comment above)")
    }

    @Test func topHelp() {
        let help = AlsTap.helpMessage(for: AlsTap.Top.self, columns: 100)
        #expect(help == Self.top, "alstap top --help changed: \(Self.firstDifference(help, Self.top)); if on purpose, regenerate HelpGoldenTests.top (see the comment above)")
    }

    /// The first line that differs, as `line N: "got" vs "golden"`.
    static func firstDifference(_ got: String, _ golden: String) -> String {
        let gotLines = got.split(separator: "\n", omittingEmptySubsequences: false)
        let goldenLines = golden.split(separator: "\n", omittingEmptySubsequences: false)
        for index in 0..<max(gotLines.count, goldenLines.count) {
            let left = index < gotLines.count ? String(gotLines[index]) : "<end>"
            let right = index < goldenLines.count ? String(goldenLines[index]) : "<end>"
            if left != right { return "line \(index + 1): \"\(left)\" vs golden \"\(right)\"" }
        }
        return "no line differs"
    }

    static let serve = #"""
        OVERVIEW: Receive Envoy access logs over gRPC and stream them live to tap subscribers.

        Every option can also be set by the environment variable named in its help; a flag wins.

        USAGE: alstap serve <options>

        OPTIONS:
          --als-listen <host:port>
                                  Ingest: Envoy's gRPC access logs (ALS) and OTLP logs (gRPC, HTTP)
                                  [ALSTAP_ALS_LISTEN, 0.0.0.0:9001].
          --http-listen <host:port>
                                  /tap, /metrics, /healthz, /readyz, /stats [ALSTAP_HTTP_LISTEN,
                                  0.0.0.0:9002].
          --threads <threads>     Event loop threads [ALSTAP_THREADS, the number of cores].
          --max-message-bytes <max-message-bytes>
                                  Largest gRPC message; larger ends the stream with RESOURCE_EXHAUSTED
                                  [ALSTAP_MAX_MESSAGE_BYTES, 4194304].
          --subscriber-queue <subscriber-queue>
                                  Lines a subscriber may have queued before new ones are dropped for it
                                  [ALSTAP_SUBSCRIBER_QUEUE, 8192].
          --subscriber-queue-bytes <subscriber-queue-bytes>
                                  Bytes of shared batches one subscriber's queue may hold
                                  [ALSTAP_SUBSCRIBER_QUEUE_BYTES, 16777216].
          --subscribers-queue-bytes <subscribers-queue-bytes>
                                  Bytes all subscribers' queues may hold together
                                  [ALSTAP_SUBSCRIBERS_QUEUE_BYTES, 67108864].
          --max-nesting-depth <max-nesting-depth>
                                  Nesting of Struct/ListValue metadata (JSON depth); deeper is
                                  INVALID_ARGUMENT [ALSTAP_MAX_NESTING_DEPTH, 100].
          --max-entries-per-message <max-entries-per-message>
                                  Log entries in one ALS message; more is RESOURCE_EXHAUSTED
                                  [ALSTAP_MAX_ENTRIES_PER_MESSAGE, 10000].
          --max-unpacked-bytes <max-unpacked-bytes>
                                  Memory one ALS message may take unpacked, and its lines together
                                  [ALSTAP_MAX_UNPACKED_BYTES, 16777216].
          --max-buffered-message-bytes <max-buffered-message-bytes>
                                  Bytes of partly received gRPC messages, all streams together
                                  [ALSTAP_MAX_BUFFERED_MESSAGE_BYTES, 33554432].
          --max-streams-total <max-streams-total>
                                  HTTP/2 streams open at once on all connections; more are refused
                                  [ALSTAP_MAX_STREAMS_TOTAL, 16384].
          --max-header-list-bytes <max-header-list-bytes>
                                  Decoded HTTP/2 request header list (SETTINGS_MAX_HEADER_LIST_SIZE)
                                  [ALSTAP_MAX_HEADER_LIST_BYTES, 65536].
          --max-connections <max-connections>
                                  Open connections, both listeners together; more are closed at once
                                  [ALSTAP_MAX_CONNECTIONS, 10000].
          --max-streams <max-streams>
                                  Concurrent HTTP/2 streams per connection
                                  (SETTINGS_MAX_CONCURRENT_STREAMS) [ALSTAP_MAX_STREAMS, 1024].
          --max-subscribers <max-subscribers>
                                  Tap subscribers; more get 503 [ALSTAP_MAX_SUBSCRIBERS, 1000].
          --top-groups <top-groups>
                                  Groups one /top aggregate keeps; beyond, entries go to its `other` row
                                  [ALSTAP_TOP_GROUPS, 10000].
          --top-bytes <top-bytes> Bytes all /top aggregates hold together; beyond, new groups go to their
                                  `other` rows [ALSTAP_TOP_BYTES, 67108864].
          --pair-window <pair-window>
                                  Seconds a request's half waits for its twin in `pair=1` taps
                                  [ALSTAP_PAIR_WINDOW, 2].
          --pair-table <pair-table>
                                  Requests waiting for their twin, per event loop; more are emitted alone
                                  [ALSTAP_PAIR_TABLE, 50000].
          --pair-table-bytes <pair-table-bytes>
                                  Bytes of batches the requests waiting for their twin keep, all loops
                                  together [ALSTAP_PAIR_TABLE_BYTES, 33554432].
          --peers <peers>         The replicas a `scope=cluster` tap reads, this one included:
                                  dns:NAME:PORT (a headless Service, re-resolved every 5 s) or
                                  HOST:PORT,... [ALSTAP_PEERS].
          --merge-window <merge-window>
                                  Seconds a cluster tap holds entries to order them by time
                                  [ALSTAP_MERGE_WINDOW, 1].
          --merge-entries <merge-entries>
                                  Entries a cluster tap holds at most to order them [ALSTAP_MERGE_ENTRIES,
                                  100].
          --replay-entries <replay-entries>
                                  Recent entries kept for `last=K` replays; 0: off [ALSTAP_REPLAY_ENTRIES,
                                  2000].
          --replay-bytes <replay-bytes>
                                  Bytes of messages kept for `last=K` replays [ALSTAP_REPLAY_BYTES,
                                  16777216].
          --max-head-bytes <max-head-bytes>
                                  Largest HTTP/1.1 request head; larger gets 431 [ALSTAP_MAX_HEAD_BYTES,
                                  16384].
          --head-timeout <head-timeout>
                                  Seconds to send a request head or the HTTP/2 preface
                                  [ALSTAP_HEAD_TIMEOUT, 5].
          --shutdown-grace <shutdown-grace>
                                  Seconds to drain on SIGTERM/SIGINT before exiting [ALSTAP_SHUTDOWN_GRACE,
                                  5].
          --drain-delay <drain-delay>
                                  Seconds between SIGTERM and the drain during which only /readyz fails, so
                                  a load balancer stops sending new streams first (Kubernetes: the preStop
                                  delay does this) [ALSTAP_DRAIN_DELAY, 0].
          --max-stream-age <max-stream-age>
                                  Seconds (give or take 10 %) before an ingest stream is ended, between
                                  messages, so Envoy reconnects to any replica; 0: never
                                  [ALSTAP_MAX_STREAM_AGE, 1800].
          --ready-max-memory <ready-max-memory>
                                  /readyz fails while the resident set is over this many bytes
                                  [ALSTAP_READY_MAX_MEMORY, 90 % of the cgroup's memory limit; without one,
                                  0: none].
          --tap-token-file <path> Require `Authorization: Bearer <token>` on the HTTP listener (not
                                  /healthz, /readyz) [ALSTAP_TAP_TOKEN_FILE].
          --als-token-file <path> Require `authorization: Bearer <token>` on ingest (ALS and OTLP)
                                  [ALSTAP_ALS_TOKEN_FILE].
          --redact-header <name>  A header whose value is shown as [redacted] (repeatable)
                                  [ALSTAP_REDACT_HEADERS, comma-separated; default authorization,
                                  proxy-authorization, cookie, set-cookie, x-api-key].
          --log-level <log-level> trace, debug, info, notice, warning, error or critical [ALSTAP_LOG_LEVEL,
                                  info].
          -h, --help              Show help information.

        """#

    static let tap = #"""
        OVERVIEW: Watch live access log entries from an alstap server, filtered.

        Examples:
          alstap tap ns/backyards-demo
          alstap tap --ns backyards-demo workload/bookings-v1
          alstap tap ns/backyards-demo --method GET --response-code 500,599
          alstap tap ns/backyards-demo --direction in --flags UH,UF --min-duration 250ms
          alstap tap ns/shop --errors --no-probes --path '!/metrics' -l app=reviews,version!=v1
          alstap tap -o json --fields request.path,response.code,durations.total
          alstap tap ns/backyards-demo -o json | jq 'select(.request.userAgent=="grpc-go/1.17.0,fasthttp")'
          alstap tap ns/shop --response-code 500,599 -w incident.alstap --duration 10m
          alstap tap -r incident.alstap --pair --since 10:05 --until 10:07:30
          alstap tap -r incident.alstap -o har > incident.har

        A resource matches when it is the source or the destination of a request. Repeated
        flags OR (--method GET --method POST), different flags AND. A value starting with !
        negates its flag: --method '!GET' --method '!HEAD' is neither.

        USAGE: alstap tap [<options>] [<resource>]

        ARGUMENTS:
          <resource>              What to watch: ns/NAME, workload/NAME or pod/NAME (default: everything);
                                  !ns/NAME: all but it.

        OPTIONS:
          --ns <ns>               Namespace of a workload/ or pod/ resource. (default: default)
          --destination <resource>
                                  Only requests to this resource: ns/NAME, workload/NAME or pod/NAME.
          --destination-ns <destination-ns>
                                  Only requests to this namespace.
          --method <method>       HTTP method (repeatable).
          --path <path>           Path prefix (repeatable).
          --authority <authority> Exact :authority / Host (repeatable).
          --scheme <scheme>       Scheme: http or https.
          --direction <direction> in or out.
          --response-code <code[,code]>
                                  One code (404) or a range as two values (500,599).
          --flags <flags>         Envoy response flags, any of (UH,UF,URX,...).
          --min-duration <duration>
                                  Only entries at least this slow (250ms, 1.5s).
          --max-duration <duration>
                                  Only entries at most this slow.
          --min-bytes <bytes>     Response body at least this big (512, 10k, 2M).
          --max-bytes <bytes>     Response body at most this big.
          --header <name[:value]> A logged request or response header, present or with this value
                                  (repeatable).
          --user-agent <prefix>   User agent prefix (repeatable).
          -l, --label <selector>  Either side's workload labels: app=reviews,version!=v1 (repeatable: OR).
          --reporter-label <selector>
                                  The reporting sidecar's labels, as --label.
          --errors                Only errors: a 5xx, an Envoy response flag, or a gRPC status other than
                                  OK.
          --no-probes             Drop kubelet probes and Istio's own health and stats requests.
          -o, --output <output>   text, json, wide or har (HAR 1.2: with -r, --max, --duration or
                                  --no-follow). (default: text)
          -w, --write <file>      Record what the tap sees to this capture file.
          -r, --read <file>       Read a capture file instead of a server (the filters, --pair and -o
                                  apply).
          -q, --quiet             With -w: show nothing, only record.
          --max-size <bytes>      With -w: stop at this file size (100M, 2G).
          --duration <duration>   Stop after this long (90s, 10m, 1h).
          --since <time>          With -r: entries that started at or after this (10:05, 10:05:00.5 UTC on
                                  the day the capture began, or 2026-12-01T10:05:00Z).
          --until <time>          With -r: entries that started at or before this.
          --server <server>       alstap's HTTP address (default $ALSTAP_SERVER, else
                                  http://127.0.0.1:9002).
          --max <max>             Exit after N entries.
          --last <last>           First the K most recent matching entries the server kept, then live ones.
          --pair                  One record per request with both sidecars' entries (source and
                                  destination).
          --cluster               Every replica's entries (the server's --peers), merged in time order, not
                                  only those of the replica asked.
          --no-follow             End after the --last entries instead of following live ones.
          --max-rps <max-rps>     At most R entries per second; the server skips the rest and says how many.
          --fields <paths>        Only these JSON fields, with -o json (request.path,response.code,…).
          --token-file <path>     A file holding the server's bearer token (default: $ALSTAP_TOKEN).
          -h, --help              Show help information.

        """#

    static let top = #"""
        OVERVIEW: Live request rates, success and latency per edge, route or workload.

        Examples:
          alstap top ns/backyards-demo
          alstap top ns/backyards-demo --by route --sort errors
          alstap top --destination workload/ratings-v1 --window 1m --once
          alstap top ns/backyards-demo -o json | jq '.rows[0]'

        On a terminal: a full-screen table, refreshed every --interval; keys: q quit, s/S sort,
        r reverse, b/B grouping. Piped, or with --once: plain tables (or the server's JSON lines).

        USAGE: alstap top [<options>] [<resource>]

        ARGUMENTS:
          <resource>              What to watch: ns/NAME, workload/NAME or pod/NAME (default: everything);
                                  !ns/NAME: all but it.

        OPTIONS:
          --ns <ns>               Namespace of a workload/ or pod/ resource. (default: default)
          --destination <resource>
                                  Only requests to this resource: ns/NAME, workload/NAME or pod/NAME.
          --destination-ns <destination-ns>
                                  Only requests to this namespace.
          --method <method>       HTTP method (repeatable).
          --path <path>           Path prefix (repeatable).
          --authority <authority> Exact :authority / Host (repeatable).
          --scheme <scheme>       Scheme: http or https.
          --direction <direction> in or out.
          --response-code <code[,code]>
                                  One code (404) or a range as two values (500,599).
          --flags <flags>         Envoy response flags, any of (UH,UF,URX,...).
          --min-duration <duration>
                                  Only entries at least this slow (250ms, 1.5s).
          --max-duration <duration>
                                  Only entries at most this slow.
          --min-bytes <bytes>     Response body at least this big (512, 10k, 2M).
          --max-bytes <bytes>     Response body at most this big.
          --header <name[:value]> A logged request or response header, present or with this value
                                  (repeatable).
          --user-agent <prefix>   User agent prefix (repeatable).
          -l, --label <selector>  Either side's workload labels: app=reviews,version!=v1 (repeatable: OR).
          --reporter-label <selector>
                                  The reporting sidecar's labels, as --label.
          --errors                Only errors: a 5xx, an Envoy response flag, or a gRPC status other than
                                  OK.
          --no-probes             Drop kubelet probes and Istio's own health and stats requests.
          --by <by>               What a row is: an edge (source → destination), an edge's route, one side,
                                  or the reporting proxy. (values: edge, route, destination, source,
                                  reporter; default: edge)
          --window <duration>     The span the numbers cover, whole seconds from 1s to 15m. (default: 10s)
          --interval <duration>   Time between snapshots, 100ms to 60s. (default: 1s)
          --sort <sort>           The order of the rows, the worst first (latency: p50); the s key changes
                                  it. (values: requests, rps, errors, success, p99, latency; default:
                                  requests)
          --once                  One snapshot (after one --interval), then exit.
          --pair                  Count requests, not entries: both sidecars' entries joined (pair=1); rows
                                  get the overhead.
          --cluster               Every replica's entries, counted together (scope=cluster; the server
                                  needs --peers).
          -o, --output <output>   A table, or the server's JSON lines. (values: table, json; default: table)
          --server <server>       alstap's HTTP address (default $ALSTAP_SERVER, else
                                  http://127.0.0.1:9002).
          --token-file <path>     A file holding the server's bearer token (default: $ALSTAP_TOKEN).
          -h, --help              Show help information.

        """#
}
