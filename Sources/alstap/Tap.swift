import ALSTapHTTP1
import ALSTapServer
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
              alstap tap ns/backyards-demo -o json | jq 'select(.request.userAgent=="grpc-go/1.17.0,fasthttp")'

            A resource matches when it is the source or the destination of a request. Repeated
            flags OR (--method GET --method POST), different flags AND.
            """)

        @Argument(help: ArgumentHelp("What to watch: ns/NAME, workload/NAME or pod/NAME (default: everything).",
                                     valueName: "resource"))
        var resource: String?

        @Option(help: "Namespace of a workload/ or pod/ resource.")
        var ns = "default"

        @Option(help: ArgumentHelp("Only requests to this resource: ns/NAME, workload/NAME or pod/NAME.",
                                   valueName: "resource"))
        var destination: String?

        @Option(help: "Only requests to this namespace.")
        var destinationNs: String?

        @Option(help: "HTTP method (repeatable).")
        var method: [String] = []

        @Option(help: "Path prefix (repeatable).")
        var path: [String] = []

        @Option(help: "Exact :authority / Host (repeatable).")
        var authority: [String] = []

        @Option(help: "Scheme: http or https.")
        var scheme: [String] = []

        @Option(help: "in or out.")
        var direction: String?

        @Option(help: ArgumentHelp("One code (404) or a range as two values (500,599).", valueName: "code[,code]"))
        var responseCode: String?

        @Option(help: ArgumentHelp("Envoy response flags, any of (UH,UF,URX,...).", valueName: "flags"))
        var flags: String?

        @Option(help: ArgumentHelp("Only entries at least this slow (250ms, 1.5s).", valueName: "duration"))
        var minDuration: String?

        @Option(name: [.customShort("o"), .long], help: "text, json or wide.")
        var output = "text"

        /// A local `alstap serve` on its default HTTP port.
        static let defaultServer = "http://127.0.0.1:\(ServeSettings.server.httpListen.port)"

        @Option(help: "alstap's HTTP address (default $ALSTAP_SERVER, else \(defaultServer)).")
        var server: String?

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

        @Option(help: ArgumentHelp("A file holding the server's bearer token (default: $ALSTAP_TOKEN).", valueName: "path"))
        var tokenFile: String?

        /// The bearer token to send, from --token-file or $ALSTAP_TOKEN.
        func token(environment: Environment = .process) throws -> String? {
            guard let tokenFile else { return environment["ALSTAP_TOKEN"] }
            return try TokenFile.read(tokenFile, flag: "--token-file")
        }

        func validate() throws {
            guard TapFormatter.Style(rawValue: output) != nil else {
                throw ValidationError("-o must be text, json or wide")
            }
            if let resource, Self.splitResource(resource) == nil {
                throw ValidationError("resource must be ns/NAME, workload/NAME or pod/NAME, not \"\(resource)\"")
            }
            if let destination, Self.splitResource(destination) == nil {
                throw ValidationError("--destination must be ns/NAME, workload/NAME or pod/NAME")
            }
            if let responseCode {
                let parts = responseCode.split(separator: ",")
                guard (1...2).contains(parts.count), parts.allSatisfy({ Int($0) != nil }) else {
                    throw ValidationError("--response-code takes one code or two (a range): 404 or 500,599")
                }
            }
            if let direction, !["in", "out", "inbound", "outbound"].contains(direction) {
                throw ValidationError("--direction must be in or out")
            }
            if let max, max < 1 { throw ValidationError("--max must be at least 1") }
            if let last, last < 0 { throw ValidationError("--last must be 0 or more") }
            if let maxRps, maxRps < 0 { throw ValidationError("--max-rps must be 0 (unlimited) or more") }
            if TapClient(server: serverURL(), token: nil) == nil {
                throw ValidationError("--server must look like http://HOST:PORT, not \"\(serverURL())\"")
            }
        }

        func serverURL(environment: Environment = .process) -> String {
            server ?? environment["ALSTAP_SERVER"] ?? Self.defaultServer
        }

        static func splitResource(_ text: String) -> (kind: String, name: String)? {
            let parts = text.split(separator: "/", maxSplits: 1)
            guard parts.count == 2, ["ns", "workload", "pod"].contains(parts[0]), !parts[1].isEmpty else { return nil }
            return (String(parts[0]), String(parts[1]))
        }

        /// The server-side query for these flags (the server does all the filtering).
        var query: String {
            var items: [(String, String)] = [("format", "json")]
            if let resource, let (kind, name) = Self.splitResource(resource) {
                items.append(kind == "ns" ? ("ns", name) : (kind, "\(ns)/\(name)"))
            }
            if let destination, let (kind, name) = Self.splitResource(destination) {
                items.append(("destination", "\(kind)/\(name)"))
            }
            if let destinationNs { items.append(("destination_ns", destinationNs)) }
            items += method.map { ("method", $0) } + path.map { ("path", $0) } + authority.map { ("authority", $0) }
                + scheme.map { ("scheme", $0) }
            if let direction { items.append(("direction", direction)) }
            if let responseCode { items.append(("code", responseCode.split(separator: ",").joined(separator: "-"))) }
            if let flags { items.append(("flags", flags)) }
            if let minDuration { items.append(("min_duration", minDuration)) }
            if let last { items.append(("last", String(last))) }
            if noFollow { items.append(("follow", "0")) }
            if pair { items.append(("pair", "1")) }
            if cluster { items.append(("scope", "cluster")) }
            if let maxRps { items.append(("max_rps", String(maxRps))) }
            return items.map { "\($0.0)=\(PercentEncoding.encode($0.1, keeping: .queryValue))" }.joined(separator: "&")
        }

        func run() throws {
            signal(SIGINT) { _ in Glibc.exit(0) }
            signal(SIGPIPE) { _ in Glibc.exit(0) }
            let style = TapFormatter.Style(rawValue: output)!
            let color = isatty(STDOUT_FILENO) == 1 && getenv("NO_COLOR") == nil
            let formatter = TapFormatter(style: style, color: color)
            let serverURL = serverURL()
            let client = TapClient(server: serverURL, token: try token())!
            let decoder = JSONDecoder()
            var printed = 0
            var backoff = 0.5
            while true {
                do {
                    try client.stream(query: query) { line in
                        backoff = 0.5
                        guard let entry = try? decoder.decode(TapEntry.self, from: Data(line.utf8)) else { return true }
                        switch entry.type {
                        case "lost" where entry.reason == "rate":
                            note("\(entry.count ?? 0) entries skipped over --max-rps")
                            return true
                        case "lost":
                            note("\(entry.count ?? 0) entries lost: this client read too slowly")
                            return true
                        case "shutdown":
                            note("the server is shutting down")
                            return true
                        case "notice":
                            note("peer \(entry.peer ?? "?"): \(entry.message ?? "")")
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
                    note("\(body) (HTTP \(status))")
                    throw ExitCode(2)
                } catch {
                    note("\(error) (\(serverURL)); reconnecting in \(backoff)s")
                }
                usleep(useconds_t(backoff * 1_000_000))
                backoff = min(backoff * 2, 5)
            }
        }

        /// One line on stderr; `message` may carry the server's text (an error body, a peer's notice).
        private func note(_ message: String) {
            let bytes = Array("alstap tap: \(TerminalText.safe(message))\n".utf8)
            _ = bytes.withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
        }
    }
}
