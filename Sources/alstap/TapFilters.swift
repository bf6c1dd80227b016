import ArgumentParser

/// The filter flags `tap` and `top` share (Backyards' names), checked here and sent as `/tap`
/// query parameters: the server does all the filtering, and rejects a value it cannot use.
/// A value starting with `!` negates its flag (`--path '!/healthz'` sends `!path=/healthz`),
/// but in label selectors, where `!KEY` and `KEY!=VALUE` are the selector's own.
struct TapFilters: ParsableArguments {
    @Argument(help: ArgumentHelp("What to watch: ns/NAME, workload/NAME or pod/NAME (default: everything); !ns/NAME: all but it.",
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

    @Option(help: ArgumentHelp("Only entries at most this slow.", valueName: "duration"))
    var maxDuration: String?

    @Option(help: ArgumentHelp("Response body at least this big (512, 10k, 2M).", valueName: "bytes"))
    var minBytes: String?

    @Option(help: ArgumentHelp("Response body at most this big.", valueName: "bytes"))
    var maxBytes: String?

    @Option(help: ArgumentHelp("A logged request or response header, present or with this value (repeatable).",
                               valueName: "name[:value]"))
    var header: [String] = []

    @Option(help: ArgumentHelp("User agent prefix (repeatable).", valueName: "prefix"))
    var userAgent: [String] = []

    @Option(name: [.customShort("l"), .long],
            help: ArgumentHelp("Either side's workload labels: app=reviews,version!=v1 (repeatable: OR).", valueName: "selector"))
    var label: [String] = []

    @Option(help: ArgumentHelp("The reporting sidecar's labels, as --label.", valueName: "selector"))
    var reporterLabel: [String] = []

    @Flag(help: "Only errors: a 5xx, an Envoy response flag, or a gRPC status other than OK.")
    var errors = false

    @Flag(help: "Drop kubelet probes and Istio's own health and stats requests.")
    var noProbes = false

    func validate() throws {
        if let resource, Self.splitResource(resource) == nil {
            throw ValidationError("resource must be ns/NAME, workload/NAME or pod/NAME, not \"\(resource)\"")
        }
        if let destination, Self.splitResource(destination) == nil {
            throw ValidationError("--destination must be ns/NAME, workload/NAME or pod/NAME")
        }
        if let responseCode {
            let parts = Self.unnegated(responseCode).value.split(separator: ",")
            guard (1...2).contains(parts.count), parts.allSatisfy({ Int($0) != nil }) else {
                throw ValidationError("--response-code takes one code or two (a range): 404 or 500,599")
            }
        }
        if let direction, !["in", "out", "inbound", "outbound"].contains(direction) {
            throw ValidationError("--direction must be in or out")
        }
    }

    /// `!VALUE`: the value, negated.
    static func unnegated(_ text: String) -> (negated: Bool, value: String) {
        text.hasPrefix("!") ? (true, String(text.dropFirst())) : (false, text)
    }

    static func splitResource(_ text: String) -> (kind: String, name: String)? {
        let parts = unnegated(text).value.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, ["ns", "workload", "pod"].contains(parts[0]), !parts[1].isEmpty else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    /// The query parameters for these flags, unescaped, in a fixed order; a negated value's
    /// parameter is `!NAME`.
    var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        func add(_ name: String, _ text: String) {
            let (negated, value) = Self.unnegated(text)
            items.append(((negated ? "!" : "") + name, value))
        }
        if let resource, let (kind, name) = Self.splitResource(resource) {
            let negation = Self.unnegated(resource).negated ? "!" : ""
            add(kind, negation + (kind == "ns" ? name : "\(ns)/\(name)"))
        }
        if let destination, let (kind, name) = Self.splitResource(destination) {
            add("destination", (Self.unnegated(destination).negated ? "!" : "") + "\(kind)/\(name)")
        }
        if let destinationNs { add("destination_ns", destinationNs) }
        for (name, values) in [("method", method), ("path", path), ("authority", authority), ("scheme", scheme)] {
            values.forEach { add(name, $0) }
        }
        if let direction { add("direction", direction) }
        if let responseCode { add("code", responseCode.split(separator: ",").joined(separator: "-")) }
        if let flags { add("flags", flags) }
        if let minDuration { add("min_duration", minDuration) }
        if let maxDuration { add("max_duration", maxDuration) }
        if let minBytes { add("min_bytes", minBytes) }
        if let maxBytes { add("max_bytes", maxBytes) }
        header.forEach { add("header", $0) }
        userAgent.forEach { add("user_agent", $0) }
        // A selector's `!` is its own (`!KEY`: without the label).
        items += label.map { ("label", $0) } + reporterLabel.map { ("reporter_label", $0) }
        if errors { items.append(("errors", "1")) }
        if noProbes { items.append(("probes", "0")) }
        return items
    }
}
