import ALSTapFilter
import Testing

@testable import alstap

@Suite struct TopTableTests {
    func hasControl(_ line: String) -> Bool {
        line.unicodeScalars.contains(where: TerminalText.isControl)
    }

    @Test func plainTableGolden() {
        let lines = TopTable(by: .edge, color: false).lines(TopFixtures.rows)
        #expect(lines == [
            "REQS  RPS  ERRS  SUCCESS     P50      P99  SOURCE                  DESTINATION      FLAGS",
            "  40  4.0     4   90.00%  2.00ms   3.00ms  reviews-v1.default      ratings.default  UF:4",
            "  20  2.0    10   50.00%  8.00ms   9.00ms  productpage-v1.default  details.default",
            "  10  1.0     0  100.00%  1.00ms  30.00ms  details-v1.default      db.default",
        ])
    }

    @Test func eachGroupingHasItsColumns() {
        func titles(_ by: TopGrouping) -> String {
            TopTable(by: by, color: false).lines([])[0]
        }
        #expect(titles(.edge) == "REQS  RPS  ERRS  SUCCESS  P50  P99  SOURCE  DESTINATION  FLAGS")
        #expect(titles(.route)
            == "REQS  RPS  ERRS  SUCCESS  P50  P99  SOURCE  DESTINATION  METHOD  AUTHORITY  ROUTE  FLAGS")
        #expect(titles(.destination).hasSuffix("P99  DESTINATION  FLAGS"))
        #expect(titles(.source).hasSuffix("P99  SOURCE  FLAGS"))
        #expect(titles(.reporter).hasSuffix("P99  REPORTER  FLAGS"))
        var route = TopFixtures.rows[0]
        (route.method, route.authority, route.route) = ("", "ratings:9080", "/api/*")
        #expect(TopTable(by: .route, color: false).lines([route])[1]
            .hasSuffix("reviews-v1.default  ratings.default  -       ratings:9080  /api/*  UF:4"))
        var reporter = TopFixtures.rows[0]
        reporter.reporter = TopFixtures.identity(workload: "istio-ingressgateway", namespace: "istio-system")
        #expect(TopTable(by: .reporter, color: false).lines([reporter])[1]
            .hasSuffix("3.00ms  istio-ingressgateway.istio-system  UF:4"))
        var other = TopFixtures.rows[1]
        (other.other, other.source, other.destination) = (true, nil, nil)
        #expect(TopTable(by: .edge, color: false).lines([other])[1].hasSuffix("9.00ms  (other)"))
    }

    /// The widest label columns give way first; the numbers are never cut.
    @Test func cutToTheTerminalWidth() {
        let table = TopTable(by: .edge, color: false)
        let full = table.lines(TopFixtures.rows)
        for width in [80, 70, 60, 50] {
            let lines = table.lines(TopFixtures.rows, width: width)
            #expect(lines.allSatisfy { $0.count <= width }, "width \(width): \(lines)")
            #expect(lines[1].hasPrefix("  40  4.0     4   90.00%  2.00ms   3.00ms  "), "width \(width)")
        }
        #expect(full.map(\.count).max() == 89)
        #expect(table.lines(TopFixtures.rows, width: 89) == full, "what fits is not cut")
        #expect(table.lines(TopFixtures.rows, width: 88)[2]
            == "  20  2.0    10   50.00%  8.00ms   9.00ms  productpage-v1.defau…  details.default")
        // 33 columns for 22 + 15 + 5: the two names at 14 each.
        #expect(table.lines(TopFixtures.rows, width: 80)[2]
            == "  20  2.0    10   50.00%  8.00ms   9.00ms  productpage-v…  details.defau…")
        #expect(table.lines(TopFixtures.rows, width: 60)[2]
            == "  20  2.0    10   50.00%  8.00ms   9.00ms  produ…  detai…")
        // Narrower than the numbers: the line is cut, still at the width.
        #expect(table.lines(TopFixtures.rows, width: 20)[1] == "  40  4.0     4   90")
    }

    @Test func fitCapsTheWidestColumnsAndSharesWhatIsLeft() {
        #expect(TopTable.fit([10, 20, 5], into: 40) == [10, 20, 5])
        #expect(TopTable.fit([10, 20, 5], into: 30) == [10, 15, 5])
        #expect(TopTable.fit([10, 20, 5], into: 20) == [8, 7, 5])
        #expect(TopTable.fit([10, 20, 5], into: 5) == [6, 6, 5], "never under the minimum")
    }

    @Test func truncateMarksTheCut() {
        #expect(TopTable.truncate("reviews-v1.default", to: 10) == "reviews-v…")
        #expect(TopTable.truncate("short", to: 10) == "short")
        #expect(TopTable.truncate("ab", to: 0) == "")
    }

    @Test func healthByErrorRate() {
        #expect(TopTable.Health(TopFixtures.row("a", "b", requests: 100, errors: 0)) == .good)
        #expect(TopTable.Health(TopFixtures.row("a", "b", requests: 100, errors: 5)) == .degraded)
        #expect(TopTable.Health(TopFixtures.row("a", "b", requests: 100, errors: 6)) == .failing)
        #expect(TopTable.Health(TopFixtures.row("a", "b", requests: 2, errors: 2)) == .failing)
    }

    /// Colors wrap the ERRS and SUCCESS cells' text only: the line looks the same without them.
    @Test func colorsByErrorRate() {
        let colored = TopTable(by: .edge, color: true).lines(TopFixtures.rows, width: 80)
        #expect(colored[0].hasPrefix("\u{1B}[1mREQS\u{1B}[0m  \u{1B}[1mRPS\u{1B}[0m"))
        #expect(colored[1].contains("  \u{1B}[31m4\u{1B}[0m   \u{1B}[31m90.00%\u{1B}[0m  "))
        #expect(colored[2].contains("  \u{1B}[31m10\u{1B}[0m   \u{1B}[31m50.00%\u{1B}[0m  "))
        #expect(colored[3].contains("    0  \u{1B}[32m100.00%\u{1B}[0m  "), "no color for zero errors, green success")
        let stripped = colored.map { $0.replacing(/\x1B\[[0-9]+m/, with: "") }
        #expect(stripped == TopTable(by: .edge, color: false).lines(TopFixtures.rows, width: 80))
        #expect(TopTable(by: .edge, color: false).lines(TopFixtures.rows).allSatisfy { !$0.contains("\u{1B}") })
    }

    /// Access-log bytes are data: a name holding terminal commands shows them as `?`.
    @Test func labelsAreSanitised() {
        let hostile = "evil\u{1B}]52;c;ZXZpbA==\u{07}\u{1B}[2J\r\n\u{9B}31m\u{7F}"
        var row = TopFixtures.row(hostile, "ratings", requests: 1, errors: 1, flags: ["U\u{1B}F": 1])
        row.destination?.namespace = "ns\u{1B}[5m"
        for color in [false, true] {
            let line = TopTable(by: .edge, color: color).lines([row])[1].replacing(/\x1B\[[0-9]+m/, with: "")
            #expect(!hasControl(line), "\(line.debugDescription)")
            #expect(line.contains("evil?]52;c;ZXZpbA==??[2J???31m?.default  ratings.ns?[5m  U?F:1"))
        }
        var snapshot = TopFixtures.snapshot()
        snapshot.by = "edge\u{1B}[2J"
        #expect(!hasControl(TopTable.summary(snapshot)))
    }

    @Test func summaryHasTheTotalsAndTheWindow() {
        #expect(TopTable.summary(TopFixtures.snapshot())
            == "by edge, window 10s (covered 1.2s): 70 requests, 7.0 rps, 80.00% success, p99 9.50ms, 3 groups")
    }

    @Test func fixedDecimals() {
        #expect(TopTable.fixed(160.802, decimals: 1) == "160.8")
        #expect(TopTable.fixed(0.75 * 100, decimals: 2) == "75.00")
        #expect(TopTable.fixed(0.05, decimals: 2) == "0.05")
        #expect(TopTable.fixed(2, decimals: 0) == "2")
        #expect(TopTable.fixed(-1, decimals: 1) == "0.0")
        #expect(TopTable.fixed(.nan, decimals: 1) == "0.0")
    }
}
