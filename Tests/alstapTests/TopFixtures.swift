@testable import alstap

/// Rows as `/top` sends them, for the layout, sort and screen tests.
enum TopFixtures {
    static func identity(workload: String? = nil, service: String? = nil,
                         namespace: String? = "default") -> TopLine.Identity {
        TopLine.Identity(workload: workload, service: service, address: nil, namespace: namespace)
    }

    static func row(_ source: String, _ destination: String, requests: Int, errors: Int, rps: Double? = nil,
                    p50: Double = 1, p99: Double = 2, flags: [String: Int]? = nil) -> TopLine.Row {
        TopLine.Row(other: nil, source: identity(workload: source), destination: identity(service: destination),
                    reporter: nil, method: nil, authority: nil, route: nil, requests: requests,
                    rps: rps ?? Double(requests) / 10, errors: errors,
                    successRate: requests == 0 ? 1 : Double(requests - errors) / Double(requests),
                    latencyMs: TopLine.Latency(p50: p50, p99: p99), flags: flags)
    }

    /// Most requests: reviews; most errors: productpage; slowest: details; lowest success: productpage.
    static let rows = [
        row("reviews-v1", "ratings", requests: 40, errors: 4, p50: 2, p99: 3, flags: ["UF": 4]),
        row("productpage-v1", "details", requests: 20, errors: 10, p50: 8, p99: 9),
        row("details-v1", "db", requests: 10, errors: 0, p50: 1, p99: 30),
    ]

    static let totals = TopLine.Row(other: nil, source: nil, destination: nil, reporter: nil, method: nil,
                                    authority: nil, route: nil, requests: 70, rps: 7, errors: 14, successRate: 0.8,
                                    latencyMs: TopLine.Latency(p50: 2, p99: 9.5), flags: ["UF": 4])

    static func snapshot(by: String = "edge", rows: [TopLine.Row] = rows) -> TopLine {
        TopLine(type: "top", time: "2026-12-01T15:54:19.146498Z", by: by, window: 10, covered: 1.244,
                groups: rows.count, totals: totals, rows: rows)
    }
}
