import ALSTapCapture
import ALSTapSystem
import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

extension AlsTap {
    struct Tap: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Watch live access log entries from an alstap server, filtered.",
            discussion: """
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
            """)

        @OptionGroup var filters: TapFilters

        @Option(name: [.customShort("o"), .long], help: "text, json, wide or har (HAR 1.2: with -r, --max, --duration or --no-follow).")
        var output = "text"

        @Option(name: [.customShort("w"), .long], help: ArgumentHelp("Record what the tap sees to this capture file.", valueName: "file"))
        var write: String?

        @Option(name: [.customShort("r"), .long], help: ArgumentHelp("Read a capture file instead of a server (the filters, --pair and -o apply).",
                                                                        valueName: "file"))
        var read: String?

        @Flag(name: [.customShort("q"), .long], help: "With -w: show nothing, only record.")
        var quiet = false

        @Option(help: ArgumentHelp("With -w: stop at this file size (100M, 2G).", valueName: "bytes"))
        var maxSize: String?

        @Option(help: ArgumentHelp("Stop after this long (90s, 10m, 1h).", valueName: "duration"))
        var duration: String?

        @Option(help: ArgumentHelp("With -r: entries that started at or after this (10:05, 10:05:00.5 UTC on the day the capture began, or 2026-12-01T10:05:00Z).",
                                   valueName: "time"))
        var since: String?

        @Option(help: ArgumentHelp("With -r: entries that started at or before this.", valueName: "time"))
        var until: String?

        @OptionGroup var connection: ServerOption

        @Option(help: "Exit after N entries.")
        var max: Int?

        @Option(help: "First the K most recent matching entries the server kept, then live ones.")
        var last: Int?

        @Flag(help: "One record per request with both sidecars' entries (source and destination).")
        var pair = false

        @Flag(help: "Every replica's entries (the server's --peers), merged in time order, not only those of the replica asked.")
        var cluster = false

        @Flag(help: "End after the --last entries instead of following live ones.")
        var noFollow = false

        @Option(help: "At most R entries per second; the server skips the rest and says how many.")
        var maxRps: Double?

        @Option(help: ArgumentHelp("Only these JSON fields, with -o json (request.path,response.code,…).", valueName: "paths"))
        var fields: String?

        @OptionGroup var auth: TokenOption

        func validate() throws {
            guard let style = TapDisplay.Style(rawValue: output) else {
                throw ValidationError("-o must be text, json, wide or har")
            }
            if read != nil && write != nil { throw ValidationError("-r reads a capture, -w records one: not both") }
            if read != nil && (last != nil || noFollow || cluster || maxRps != nil || duration != nil) {
                throw ValidationError("-r reads a file: --last, --no-follow, --cluster, --max-rps and --duration are for a server")
            }
            if (since != nil || until != nil) && read == nil { throw ValidationError("--since and --until are for -r") }
            if let since, CaptureTime(parsing: since) == nil { throw ValidationError("--since: \(Self.timeHelp)") }
            if let until, CaptureTime(parsing: until) == nil { throw ValidationError("--until: \(Self.timeHelp)") }
            if (maxSize != nil || quiet) && write == nil { throw ValidationError("--max-size and -q are for -w") }
            if write != nil && max != nil { throw ValidationError("-w stops at --max-size or --duration, not --max") }
            if write != nil && cluster {
                throw ValidationError("-w records one replica's entries (with their receive times): not --cluster")
            }
            if let maxSize, TapCapture.bytes(maxSize) == nil { throw ValidationError("--max-size: a size such as 100M") }
            if let duration, TapCapture.seconds(duration) == nil { throw ValidationError("--duration: a duration such as 10m") }
            if style == .har && read == nil && max == nil && duration == nil && !noFollow {
                throw ValidationError("-o har writes one document: give it an end (-r, --max, --duration or --no-follow)")
            }
            if let max, max < 1 { throw ValidationError("--max must be at least 1") }
            if let last, last < 0 { throw ValidationError("--last must be 0 or more") }
            if let maxRps, maxRps < 0 { throw ValidationError("--max-rps must be 0 (unlimited) or more") }
            if fields != nil && output != "json" {
                throw ValidationError("--fields selects JSON fields: use it with -o json (text needs every field)")
            }
        }

        static let timeHelp = "HH:MM[:SS[.ffffff]] (UTC, on the day the capture began) or YYYY-MM-DDTHH:MM:SS[.ffffff]Z"

        /// The server-side query for these flags (the server does all the filtering).
        var query: String {
            var items = [("format", "json")] + filters.queryItems
            if let last { items.append(("last", String(last))) }
            if noFollow { items.append(("follow", "0")) }
            if pair { items.append(("pair", "1")) }
            if cluster { items.append(("scope", "cluster")) }
            if let maxRps { items.append(("max_rps", String(maxRps))) }
            if let fields { items.append(("fields", fields)) }
            return TapClient.query(items)
        }

        func run() throws {
            signal(SIGPIPE) { _ in Glibc.exit(0) }
            // Live lines go out as they come; a file read back is written in large blocks.
            let display = TapDisplay(style: TapDisplay.Style(rawValue: output)!, max: max, live: read == nil)
            if let read {
                try TapCapture.read(path: read, query: TapCapture.localQuery(filters: filters, pair: pair, fields: fields),
                                    since: since.flatMap { CaptureTime(parsing: $0) }, until: until.flatMap { CaptureTime(parsing: $0) },
                                    display: display)
                return
            }
            let client = TapClient(server: connection.url(), token: try auth.token())!
            let deadline = duration.flatMap(TapCapture.seconds).map { monotonicSeconds() + $0 }
            if let write {
                var items = [("format", "capture")] + filters.queryItems
                if let last { items.append(("last", String(last))) }
                if noFollow { items.append(("follow", "0")) }
                if let maxRps { items.append(("max_rps", String(maxRps))) }
                try TapCapture.record(path: write, client: client, items: items,
                                      maxBytes: maxSize.flatMap(TapCapture.bytes), deadline: deadline,
                                      show: quiet ? nil : (TapCapture.localQuery(filters: filters, pair: pair, fields: fields), display),
                                      endsWithReplay: noFollow)
                display.finish()
                return
            }
            TapCapture.stopOnSignals()
            var backoff = TapClient.Backoff()
            defer { display.finish() }
            while !TapCapture.stopRequested() {
                do {
                    try client.stream(query: query, deadline: deadline, shouldStop: TapCapture.stopRequested) { line in
                        backoff.reset()
                        return display.show(line) && !TapCapture.stopRequested()
                    }
                    return
                } catch .lost where noFollow {
                    return  // the replay is over
                } catch .rejected(let status, let body) {
                    TerminalText.note("tap", "\(body) (HTTP \(status))")
                    throw ExitCode(2)
                } catch {
                    TerminalText.note("tap", "\(error) (\(client.server)); reconnecting in \(backoff.delay)s")
                }
                if deadline.map({ monotonicSeconds() >= $0 }) == true { return }
                usleep(useconds_t(backoff.next() * 1_000_000))
            }
        }
    }
}
