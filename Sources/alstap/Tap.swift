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

            A resource matches when it is the source or the destination of a request. Repeated
            flags OR (--method GET --method POST), different flags AND. A value starting with !
            negates its flag: --method '!GET' --method '!HEAD' is neither.
            """)

        @OptionGroup var filters: TapFilters

        @Option(name: [.customShort("o"), .long], help: "text, json or wide.")
        var output = "text"

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
            guard TapFormatter.Style(rawValue: output) != nil else {
                throw ValidationError("-o must be text, json or wide")
            }
            if let max, max < 1 { throw ValidationError("--max must be at least 1") }
            if let last, last < 0 { throw ValidationError("--last must be 0 or more") }
            if let maxRps, maxRps < 0 { throw ValidationError("--max-rps must be 0 (unlimited) or more") }
            if fields != nil && output != "json" {
                throw ValidationError("--fields selects JSON fields: use it with -o json (text needs every field)")
            }
        }

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
            signal(SIGINT) { _ in Glibc.exit(0) }
            signal(SIGPIPE) { _ in Glibc.exit(0) }
            let style = TapFormatter.Style(rawValue: output)!
            let color = isatty(STDOUT_FILENO) == 1 && getenv("NO_COLOR") == nil
            let formatter = TapFormatter(style: style, color: color)
            let serverURL = connection.url()
            let client = TapClient(server: serverURL, token: try auth.token())!
            let decoder = JSONDecoder()
            var printed = 0
            var backoff = TapClient.Backoff()
            while true {
                do {
                    try client.stream(query: query) { line in
                        backoff.reset()
                        guard let entry = try? decoder.decode(TapEntry.self, from: Data(line.utf8)) else { return true }
                        switch entry.type {
                        case "lost" where entry.reason == "rate":
                            TerminalText.note("tap", "\(entry.count ?? 0) entries skipped over --max-rps")
                            return true
                        case "lost":
                            TerminalText.note("tap", "\(entry.count ?? 0) entries lost: this client read too slowly")
                            return true
                        case "shutdown":
                            TerminalText.note("tap", "the server is shutting down")
                            return true
                        case "notice":
                            TerminalText.note("tap", "peer \(entry.peer ?? "?"): \(entry.message ?? "")")
                            return true
                        default:
                            break
                        }
                        print(style == .json ? TerminalText.safeJSON(line) : formatter.format(entry))
                        fflush(nil)
                        printed += 1
                        return max.map { printed < $0 } ?? true
                    }
                    return
                } catch .lost where noFollow {
                    return  // the replay is over
                } catch .rejected(let status, let body) {
                    TerminalText.note("tap", "\(body) (HTTP \(status))")
                    throw ExitCode(2)
                } catch {
                    TerminalText.note("tap", "\(error) (\(serverURL)); reconnecting in \(backoff.delay)s")
                }
                usleep(useconds_t(backoff.next() * 1_000_000))
            }
        }
    }
}
