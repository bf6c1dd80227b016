import ArgumentParser

/// The filter flags `tap` and `top` share (Backyards' names), checked here and sent as `/tap`
/// query parameters: the server does all the filtering, and rejects a value it cannot use.
struct TapFilters: ParsableArguments {
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

    func validate() throws {
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
    }

    static func splitResource(_ text: String) -> (kind: String, name: String)? {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, ["ns", "workload", "pod"].contains(parts[0]), !parts[1].isEmpty else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    /// The query parameters for these flags, unescaped, in a fixed order.
    var queryItems: [(String, String)] {
        var items: [(String, String)] = []
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
        return items
    }
}
