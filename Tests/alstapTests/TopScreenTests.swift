import ALSTapFilter
import Testing

@testable import alstap

@Suite struct TopScreenTests {
    func lines(width: Int = 100, height: Int = 12, snapshot: TopLine? = TopFixtures.snapshot(),
               status: String? = nil, controls: TopControls = TopControls(sort: .requests, by: .edge)) -> [String] {
        TopScreen(width: width, height: height, color: false)
            .lines(server: "http://127.0.0.1:9002", status: status, snapshot: snapshot, controls: controls)
    }

    @Test func headerTableAndFooterFillTheScreen() {
        let screen = lines()
        #expect(screen.count == 12)
        #expect(screen[0] == "alstap top  http://127.0.0.1:9002  15:54:19")
        #expect(screen[1]
            == "by edge, window 10s (covered 1.2s): 70 requests, 7.0 rps, 80.00% success, p99 9.50ms, 3 groups")
        #expect(screen[2] == "")
        #expect(screen[3].hasPrefix("REQS  RPS  ERRS"))
        #expect(screen[4].contains("reviews-v1.default") && screen[6].contains("details-v1.default"))
        #expect(screen[7...10].allSatisfy { $0.isEmpty })
        #expect(screen[11] == "q quit  s/S sort: requests  r reverse  b/B by: edge")
    }

    @Test func theSortAndItsDirectionShow() {
        var controls = TopControls(sort: .errors, by: .edge)
        controls.reversed = true
        let screen = lines(controls: controls)
        #expect(screen[4].contains("details-v1") && screen[6].contains("productpage-v1"))
        #expect(screen[11] == "q quit  s/S sort: errors reversed  r reverse  b/B by: edge")
    }

    @Test func rowsBeyondTheHeightAreCountedInTheFooter() {
        let screen = lines(height: 7)
        #expect(screen.count == 7)
        #expect(screen[4].contains("reviews-v1") && screen[5].contains("productpage-v1"))
        #expect(screen[6].hasSuffix("b/B by: edge  (1 more rows)"))
    }

    @Test func everyLineFitsTheWidth() {
        for width in [120, 80, 40, 10] {
            let status = "cannot connect to 127.0.0.1:9002: Connection refused; reconnecting in 0.5s"
            let screen = lines(width: width, status: status)
            #expect(screen.allSatisfy { $0.count <= width }, "width \(width): \(screen)")
        }
    }

    /// After `b` the old grouping's rows are not shown under the new titles.
    @Test func anotherGroupingWaitsForItsSnapshot() {
        let screen = lines(controls: TopControls(sort: .requests, by: .route))
        #expect(screen[1] == "waiting for the first snapshot by route…")
        #expect(!screen.contains { $0.contains("REQS") })
        #expect(screen[11].hasSuffix("b/B by: route"))
        #expect(lines(snapshot: nil)[1] == "waiting for the first snapshot by edge…")
    }

    @Test func theStatusAndServerAreSanitised() {
        let screen = TopScreen(width: 200, height: 5, color: false)
            .lines(server: "http://h\u{1B}[2J:1", status: "peer said \u{1B}]52;c;eA==\u{07}", snapshot: nil,
                   controls: TopControls(sort: .requests, by: .edge))
        #expect(screen[0] == "alstap top  http://h?[2J:1  peer said ?]52;c;eA==?")
    }

    /// Each line at its own row, erased first: no scrolling, no wrapping to depend on.
    @Test func frameWritesEachLineAtItsRow() {
        #expect(TopScreen.frame(["a", "", "c"]) == "\u{1B}[1;1H\u{1B}[2Ka\u{1B}[2;1H\u{1B}[2K\u{1B}[3;1H\u{1B}[2Kc")
    }
}
