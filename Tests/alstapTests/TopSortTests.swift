import Testing

@testable import alstap

@Suite struct TopSortTests {
    func order(_ sort: TopSort, reversed: Bool = false, _ rows: [TopLine.Row] = TopFixtures.rows) -> [String] {
        sort.ordered(rows, reversed: reversed).map { $0.source?.workload ?? "(other)" }
    }

    @Test func eachKeyPutsTheWorstFirst() {
        #expect(order(.requests) == ["reviews-v1", "productpage-v1", "details-v1"])
        #expect(order(.rps) == ["reviews-v1", "productpage-v1", "details-v1"])
        #expect(order(.errors) == ["productpage-v1", "reviews-v1", "details-v1"])
        #expect(order(.success) == ["productpage-v1", "reviews-v1", "details-v1"])
        #expect(order(.p99) == ["details-v1", "productpage-v1", "reviews-v1"])
        #expect(order(.latency) == ["productpage-v1", "reviews-v1", "details-v1"])
    }

    @Test func reversedTurnsTheKeyRound() {
        #expect(order(.errors, reversed: true) == ["details-v1", "reviews-v1", "productpage-v1"])
        #expect(order(.p99, reversed: true) == ["reviews-v1", "productpage-v1", "details-v1"])
    }

    @Test func tiesGoByRequestsThenLabel() {
        let rows = [TopFixtures.row("b", "x", requests: 5, errors: 0),
                    TopFixtures.row("a", "x", requests: 5, errors: 0),
                    TopFixtures.row("c", "x", requests: 9, errors: 0)]
        #expect(order(.errors, rows) == ["c", "a", "b"])
    }

    @Test func theOtherRowStaysLast() {
        var other = TopFixtures.row("", "", requests: 1000, errors: 900)
        other.other = true
        other.source = nil
        let rows = [other] + TopFixtures.rows
        for sort in TopSort.allCases {
            #expect(order(sort, rows).last == "(other)", "\(sort)")
            #expect(order(sort, reversed: true, rows).last == "(other)", "\(sort) reversed")
        }
    }

    @Test func rowsWithoutLatencySortAsFastest() {
        var unknown = TopFixtures.row("tcp", "x", requests: 1, errors: 0)
        unknown.latencyMs = nil
        #expect(order(.p99, [unknown] + TopFixtures.rows).last == "tcp")
    }
}
