import FoundationEssentials
import Testing

@testable import alstap

@Suite struct TopLineTests {
    func decode(_ json: String) throws -> TopLine {
        try JSONDecoder().decode(TopLine.self, from: Data(json.utf8))
    }

    /// A line as the server writes it (README's example).
    @Test func snapshotLine() throws {
        let line = try decode(#"""
            {"type":"top","time":"2026-12-01T15:54:19.146498Z","by":"edge","window":10,"covered":1.244,"groups":1,\#
            "totals":{"requests":200,"rps":160.802,"errors":50,"successRate":0.7500,\#
            "latencyMs":{"p50":0.993,"p90":0.993,"p99":0.993,"max":1.000},"bytesReceived":0,"bytesSent":0,"flags":{"UF":50}},\#
            "rows":[{"source":{"workload":"reviews-v1","namespace":"default"},"destination":{"service":"ratings",\#
            "namespace":"default"},"requests":200,"rps":160.802,"errors":50,"successRate":0.7500,\#
            "latencyMs":{"p50":0.993,"p90":0.993,"p99":0.993,"max":1.000},"bytesReceived":0,"bytesSent":0,"flags":{"UF":50}}]}
            """#)
        #expect(line.type == "top" && line.by == "edge" && line.window == 10 && line.groups == 1)
        #expect(line.totals?.requests == 200 && line.totals?.successRate == 0.75)
        let row = try #require(line.rows?.first)
        #expect(row.source?.label == "reviews-v1.default")
        #expect(row.destination?.label == "ratings.default")
        #expect(row.latencyMs?.p99 == 0.993)
        #expect(row.flags == ["UF": 50])
        #expect(row.label == "reviews-v1.default ratings.default")
    }

    @Test func routeReporterOtherAndUnknownRows() throws {
        let line = try decode(#"""
            {"type":"top","by":"route","rows":[\#
            {"source":{},"destination":{"address":"10.0.0.9:80"},"method":"GET","authority":"a:80","route":"/api",\#
            "requests":3,"rps":0.3,"errors":0,"successRate":1.0000,"bytesReceived":0,"bytesSent":0},\#
            {"reporter":{"workload":"gw"},"requests":1,"rps":0.1,"errors":1,"successRate":0.0000},\#
            {"other":true,"requests":9,"rps":0.9,"errors":0,"successRate":1.0000}]}
            """#)
        let rows = try #require(line.rows)
        #expect(rows[0].source?.label == "-" && rows[0].destination?.label == "10.0.0.9:80")
        #expect(rows[0].label == "- 10.0.0.9:80 GET a:80 /api")
        #expect(rows[0].latencyMs == nil)
        #expect(rows[1].reporter?.label == "gw")
        #expect(rows[2].other == true && rows[2].label == "(other)")
    }

    @Test func shutdownLine() throws {
        let line = try decode(#"{"type":"shutdown"}"#)
        #expect(line.type == "shutdown" && line.rows == nil)
    }
}
