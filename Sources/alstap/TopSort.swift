import ArgumentParser

/// What `alstap top` orders its rows by (`--sort`, the `s` key). Each key puts the rows that
/// most need a look first: the busiest, the most failing, the slowest.
enum TopSort: String, CaseIterable, ExpressibleByArgument {
    case requests, rps, errors
    /// The success rate, lowest first.
    case success
    case p99
    /// The median (p50) latency.
    case latency

    /// The rows in this order (`reversed`: the other way round), ties by requests then label;
    /// the `other` row, which holds groups beyond the server's bound, stays last.
    func ordered(_ rows: [TopLine.Row], reversed: Bool = false) -> [TopLine.Row] {
        let (other, groups) = (rows.filter { $0.other == true }, rows.filter { $0.other != true })
        let sorted = groups.sorted { a, b in
            let (x, y) = (score(a), score(b))
            if x != y { return reversed ? x < y : x > y }
            if a.requests != b.requests { return a.requests > b.requests }
            return a.label < b.label
        }
        return sorted + other
    }

    /// Larger sorts first.
    private func score(_ row: TopLine.Row) -> Double {
        switch self {
        case .requests: Double(row.requests)
        case .rps: row.rps
        case .errors: Double(row.errors)
        case .success: -row.successRate
        case .p99: row.latencyMs?.p99 ?? -1
        case .latency: row.latencyMs?.p50 ?? -1
        }
    }
}
