/// One line of a `/top` stream as `alstap top` reads it: a snapshot (`type` "top") or the
/// server's `shutdown` notice. Strings are the server's data, unsanitised: what shows them on a
/// terminal passes them through `TerminalText.safe`.
struct TopLine: Decodable {
    /// One side of a row, or its reporter: a workload, a service or an address, maybe namespaced.
    struct Identity: Decodable, Equatable {
        var workload: String?
        var service: String?
        var address: String?
        var namespace: String?

        /// `name.namespace`, the address, or `-` when unknown (as the server's text format).
        var label: String {
            guard let name = workload ?? service else { return address ?? "-" }
            return namespace.map { "\(name).\($0)" } ?? name
        }
    }

    /// The percentiles the table shows (the line has p90 and max too).
    struct Latency: Decodable, Equatable {
        var p50: Double
        var p99: Double
    }

    struct Row: Decodable, Equatable {
        /// The row that takes the entries of groups beyond the server's bound.
        var other: Bool?
        var source: Identity?
        var destination: Identity?
        var reporter: Identity?
        /// `by=route` rows: method ("" for none), authority and route.
        var method: String?
        var authority: String?
        var route: String?
        var requests: Int
        var rps: Double
        var errors: Int
        var successRate: Double
        var latencyMs: Latency?
        var flags: [String: Int]?

        /// Every label the row has, as one string (ties in a sort are broken by it).
        var label: String {
            if other == true { return "(other)" }
            let parts = [reporter?.label, source?.label, destination?.label, method, authority, route]
            return parts.compactMap { $0 }.joined(separator: " ")
        }
    }

    var type: String
    var time: String?
    var by: String?
    var window: Int?
    /// Seconds the numbers cover: the window, or less while the aggregate is younger.
    var covered: Double?
    var groups: Int?
    var totals: Row?
    var rows: [Row]?
}
