import ALSTapFilter
import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

extension TopGrouping: ExpressibleByArgument {}

extension AlsTap {
    struct Top: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Live request rates, success and latency per edge, route or workload.",
            discussion: """
            Examples:
              alstap top ns/backyards-demo
              alstap top ns/backyards-demo --by route --sort errors
              alstap top --destination workload/ratings-v1 --window 1m --once
              alstap top ns/backyards-demo -o json | jq '.rows[0]'

            On a terminal: a full-screen table, refreshed every --interval; keys: q quit, s/S sort,
            r reverse, b/B grouping. Piped, or with --once: plain tables (or the server's JSON lines).
            """)

        enum Output: String, CaseIterable, ExpressibleByArgument {
            case table, json
        }

        @OptionGroup var filters: TapFilters

        @Option(help: """
            What a row is: an edge (source → destination), an edge's route, one side, or the reporting proxy.
            """)
        var by = TopGrouping.edge

        @Option(help: ArgumentHelp("The span the numbers cover, whole seconds from 1s to 15m.", valueName: "duration"))
        var window = "10s"

        @Option(help: ArgumentHelp("Time between snapshots, 100ms to 60s.", valueName: "duration"))
        var interval = "1s"

        @Option(help: "The order of the rows, the worst first (latency: p50); the s key changes it.")
        var sort = TopSort.requests

        @Flag(help: "One snapshot (after one --interval), then exit.")
        var once = false

        @Flag(help: "Count requests, not entries: both sidecars' entries joined (pair=1); rows get the overhead.")
        var pair = false

        @Flag(help: "Every replica's entries, counted together (scope=cluster; the server needs --peers).")
        var cluster = false

        @Option(name: [.customShort("o"), .long], help: "A table, or the server's JSON lines.")
        var output = Output.table

        @OptionGroup var connection: ServerOption

        @OptionGroup var auth: TokenOption

        /// The `/top` query: the filters, the grouping (which the `b` key changes), the window and
        /// the interval (the server checks those two, and rejects what it cannot use).
        func query(by: TopGrouping) -> String {
            var items = [("format", "json")] + filters.queryItems
                + [("by", by.rawValue), ("window", window), ("interval", interval)]
            if once { items.append(("follow", "0")) }
            if pair { items.append(("pair", "1")) }
            if cluster { items.append(("scope", "cluster")) }
            return TapClient.query(items)
        }

        func run() throws {
            signal(SIGPIPE) { _ in Glibc.exit(0) }
            let serverURL = connection.url()
            let client = TapClient(server: serverURL, token: try auth.token())!
            let color = isatty(STDOUT_FILENO) == 1 && getenv("NO_COLOR") == nil
            guard output == .table, !once, Terminal.isInteractive else {
                signal(SIGINT) { _ in Glibc.exit(0) }
                return try printSnapshots(client, color: color)
            }
            var live = TopLive(client: client, server: serverURL, color: color,
                               controls: TopControls(sort: sort, by: by), query: query(by:))
            if case .rejected(let status, let body) = live.run() {
                TerminalText.note("top", "\(body) (HTTP \(status))")
                throw ExitCode(2)
            }
        }

        /// Piped, or `--once`: each snapshot as a plain table (a blank line between), or as the
        /// server's JSON line; reconnects like `tap` unless `--once`.
        private func printSnapshots(_ client: TapClient, color: Bool) throws {
            let decoder = JSONDecoder()
            let width = isatty(STDOUT_FILENO) == 1 ? Terminal.size()?.width : nil
            var printed = 0
            var backoff = TapClient.Backoff()
            while true {
                do {
                    try client.stream(path: "/top", query: query(by: by)) { line in
                        guard let snapshot = try? decoder.decode(TopLine.self, from: Data(line.utf8)) else {
                            return true
                        }
                        if snapshot.type == "shutdown" {
                            TerminalText.note("top", "the server is shutting down")
                            return true
                        }
                        backoff.reset()
                        if output == .json {
                            print(TerminalText.safeJSON(line))
                        } else {
                            if printed > 0 { print() }
                            let table = TopTable(by: TopGrouping(rawValue: snapshot.by ?? "") ?? by, color: color)
                            print("# " + TopTable.summary(snapshot))
                            print(table.lines(sort.ordered(snapshot.rows ?? []), width: width).joined(separator: "\n"))
                        }
                        fflush(nil)
                        printed += 1
                        return true
                    }
                    return
                } catch .lost where once && printed > 0 {
                    return  // the one snapshot is out
                } catch .rejected(let status, let body) {
                    TerminalText.note("top", "\(body) (HTTP \(status))")
                    throw ExitCode(2)
                } catch where once {
                    TerminalText.note("top", "\(error) (\(connection.url()))")
                    throw ExitCode.failure
                } catch {
                    TerminalText.note("top", "\(error) (\(connection.url())); reconnecting in \(backoff.delay)s")
                }
                usleep(useconds_t(backoff.next() * 1_000_000))
            }
        }
    }
}
