import ALSTapALS
@testable import ALSTapFilter
import Testing

/// A bad value and the parameter its message must name.
struct BadValue: Sendable, CustomTestStringConvertible {
    let query: String
    let parameter: String
    let value: String
    var testDescription: String { query }

    init(_ query: String, _ parameter: String, _ value: String) {
        (self.query, self.parameter, self.value) = (query, parameter, value)
    }
}

/// Parsing `/tap`'s query: every refusal names its parameter, nothing is ignored.
@Suite struct TapQueryTests {
    static let badValues: [BadValue] = [
        BadValue("format=xml", "format", "xml"),
        BadValue("format=json,text", "format", "json,text"),
        BadValue("scope=global", "scope", "global"),
        BadValue("last=-1", "last", "-1"),
        BadValue("last=ten", "last", "ten"),
        BadValue("last=1&last=2", "last", "1,2"),
        BadValue("since=yesterday", "since", "yesterday"),
        BadValue("since=-5", "since", "-5"),
        BadValue("since=1e12", "since", "1e12"),
        BadValue("since=nan", "since", "nan"),
        BadValue("since=inf", "since", "inf"),
        BadValue("since=1.1234567", "since", "1.1234567"),
        BadValue("since=123456789012", "since", "123456789012"),
        BadValue("follow=2", "follow", "2"),
        BadValue("pair=yes", "pair", "yes"),
        BadValue("max_rps=-1", "max_rps", "-1"),
        BadValue("max_rps=inf", "max_rps", "inf"),
        BadValue("max_rps=fast", "max_rps", "fast"),
        BadValue("workload=a/b/c", "workload", "a/b/c"),
        BadValue("workload=/reviews", "workload", "/reviews"),
        BadValue("workload=demo/", "workload", "demo/"),
        BadValue("pod=a/b/c", "pod", "a/b/c"),
        BadValue("destination=reviews", "destination", "reviews"),
        BadValue("destination=service/reviews", "destination", "service/reviews"),
        BadValue("destination=workload/", "destination", "workload/"),
        BadValue("destination=ns/demo,workload/reviews", "destination", "workload/reviews"),
        BadValue("reporter=ns/demo", "reporter", "ns/demo"),
        BadValue("reporter=reviews", "reporter", "reviews"),
        BadValue("method=FETCH", "method", "FETCH"),
        BadValue("path=api", "path", "api"),
        BadValue("direction=up", "direction", "up"),
        BadValue("code=600", "code", "600"),
        BadValue("flags=XX", "flags", "XX"),
        BadValue("flags=uh", "flags", "uh"),
        BadValue("min_duration=10", "min_duration", "10"),
        BadValue("min_duration=1s,2s", "min_duration", "1s,2s"),
        BadValue("type=udp", "type", "udp"),
        BadValue("type=http,tcp", "type", "http,tcp"),
    ]

    @Test(arguments: badValues)
    func badValueNamesItsParameter(_ bad: BadValue) {
        let message = refusal(bad.query)
        #expect(message?.hasPrefix("bad value for \(bad.parameter): \"\(bad.value)\" (") == true, "\(message ?? "accepted")")
    }

    @Test func aBadValueSaysWhatIsExpected() {
        #expect(refusal("direction=up") == "bad value for direction: \"up\" (inbound, outbound, in or out)")
        #expect(refusal("method=FETCH")
            == "bad value for method: \"FETCH\" (GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH)")
        #expect(refusal("destination=ns/demo,workload/reviews")
            == "bad value for destination: \"workload/reviews\" (ns/NAME, workload/NAME or pod/NAME, one kind per parameter)")
    }

    @Test(arguments: ["verbose=1", "namespace=demo", "NS=demo", "ns=demo&colour=red"])
    func unknownParametersAreRefused(query: String) {
        let name = query.split(separator: "&").last!.split(separator: "=").first!
        #expect(refusal(query)?.hasPrefix("unknown parameter \"\(name)\"; known: format, scope, last") == true)
    }

    @Test(arguments: ["ns=", "ns", "ns=,", "code=,,", "workload=&ns=demo", "format="])
    func emptyValuesAreRefused(query: String) {
        let name = query.split(separator: "=", omittingEmptySubsequences: false).first!
        #expect(refusal(query) == "parameter \"\(name)\" needs a value")
    }

    @Test(arguments: ["format=als&pair=1", "format=als&scope=cluster", "pair=1&format=als"])
    func alsFormatCarriesSingleLocalEntries(query: String) {
        #expect(refusal(query) == "format=als carries single entries of this replica: not with pair=1, scope=cluster or fields")
    }

    @Test(arguments: ["format=capture&pair=1", "format=capture&fields=request.path"])
    func captureKeepsWholeEntries(query: String) {
        #expect(refusal(query) == "format=capture keeps whole entries as received: pair and fields apply when it is read (alstap tap -r FILE)")
    }

    /// What a cluster tap and `alstap tap -w` send as `since=` reads back exactly.
    @Test(arguments: [Int64(0), 42, 1_764_633_605_000_042, 1_764_633_600_999_999])
    func sinceTextReadsBack(micros: Int64) throws {
        #expect(try parse("since=" + TapQuery.sinceText(micros)).sinceMicros == micros)
    }

    @Test func captureTakesFiltersAndReplayButNotClusterScope() throws {
        let query = try parse("format=capture&ns=demo&last=5&follow=0&since=1764633600")
        #expect(query.format == .capture && query.last == 5 && query.sinceMicros != nil && query.filter != nil)
        #expect(refusal("format=capture&scope=cluster")
            == "format=capture records one replica's entries with their receive times: not with scope=cluster")
    }

    @Test func outputParameters() throws {
        let query = try parse("format=text&last=20&follow=0&max_rps=2.5&pair=true&scope=cluster")
        #expect(query.format == .text)
        #expect(query.last == 20)
        #expect(!query.follow)
        #expect(query.maxEntriesPerSecond == 2.5)
        #expect(query.pair)
        #expect(query.clusterScope)
        #expect(query.filter == nil)
        #expect(query.filterQuery == "")
        #expect(try parse("format=ndjson").format == .json)
        #expect(try parse("format=sse&scope=local").format == .sse)
        #expect(try parse("format=als").format == .als)
        #expect(try parse("since=1764633600.25").sinceMicros == 1_764_633_600_250_000)
        #expect(try parse("since=1764633600").sinceMicros == 1_764_633_600_000_000)
        #expect(try parse("since=1764633605.000042").sinceMicros == 1_764_633_605_000_042, "exact, no rounding")
        let defaults = try parse("")
        #expect(defaults == TapQuery())
    }

    @Test func clausesFollowTheParametersFirstAppearance() throws {
        let query = try parse("code=5xx&ns=a&code=404&workload=b/w&ns=c")
        #expect(query.filter?.clauses == [
            .codes([500...599, 404...404]),
            .either(.namespace, [QualifiedName(namespace: nil, name: Array("a".utf8)),
                                 QualifiedName(namespace: nil, name: Array("c".utf8))]),
            .either(.workload, [QualifiedName(namespace: Array("b".utf8), name: Array("w".utf8))]),
        ])
    }

    @Test func kindsOfDestinationAndReporter() throws {
        #expect(try parse("destination=pod/demo/p1,pod/p2").filter?.clauses == [
            .destination(.pod, [QualifiedName(namespace: Array("demo".utf8), name: Array("p1".utf8)),
                                QualifiedName(namespace: nil, name: Array("p2".utf8))]),
        ])
        #expect(try parse("reporter=workload/r").filter?.clauses
            == [.reporter(.workload, [QualifiedName(namespace: nil, name: Array("r".utf8))])])
        #expect(try parse("direction=in&direction=in").filter?.clauses == [.directions(inbound: true, outbound: false)])
        #expect(try parse("method=get,DELETE").filter?.clauses == [.methods(1 << 1 | 1 << 5)])
        #expect(try parse("scheme=HTTPS").filter?.clauses == [.scheme([Array("https".utf8)])])
    }

    /// The filter's parameters, for peers: grouped by parameter, one value each, percent-encoded.
    @Test func filterQueryPushesDownTheFilterOnly() throws {
        let query = try parse("ns=a&format=text&code=500,503&last=5&ns=b&pair=1&workload=demo/reviews")
        #expect(query.filterQuery == "ns=a&ns=b&code=500&code=503&workload=demo/reviews")
    }

    @Test func filterQueryIsPercentEncoded() throws {
        #expect(try parse("authority=a%20b%3A80").filterQuery == "authority=a%20b%3A80")
        #expect(try parse("log_name=x+y").filterQuery == "log_name=x%20y")
        #expect(try parse("path=/a%26b%3Dc%3F").filterQuery == "path=/a%26b%3Dc%3F")
        #expect(try parse("authority=%C3%A9.example").filterQuery == "authority=%C3%A9.example")
        #expect(try parse("authority=a-b.c_d~e").filterQuery == "authority=a-b.c_d~e")
        #expect(try parse("authority=50%25").filterQuery == "authority=50%25")
    }

    @Test(arguments: [
        ("100us", 100), ("100µs", 100), ("250ms", 250_000), ("1.5s", 1_500_000), ("2m", 120_000_000),
        ("0s", 0), ("0.5ms", 500), ("9000000000000s", 9_000_000_000_000_000_000),
    ] as [(String, Int64)])
    func durationUnits(text: String, micros: Int64) throws {
        #expect(try parse("min_duration=" + text).filter?.clauses == [.minDurationMicros(micros)])
    }

    /// Beyond Int64 µs a duration is refused, not a trap converting it.
    @Test(arguments: ["10", "ms", "-1s", "1h", "infs", "nans", "1e300s", "10000000000000s", "1.5 s"])
    func badDurations(text: String) {
        #expect(refusal("min_duration=" + text)?.hasPrefix("bad value for min_duration: ") == true, "\(text)")
    }

    @Test(arguments: [
        ("404", 404...404), ("500-599", 500...599), ("5xx", 500...599), ("1xx", 100...199),
        ("100", 100...100), ("599", 599...599), ("302-302", 302...302), ("5XX", 500...599), ("4Xx", 400...499),
    ] as [(String, ClosedRange<UInt16>)])
    func codeForms(text: String, range: ClosedRange<UInt16>) throws {
        #expect(try parse("code=" + text).filter?.clauses == [.codes([range])])
    }

    @Test(arguments: ["600", "99", "0", "5xxx", "0xx", "6xx", "xx", "500-400", "500-", "-500", "500-600", "5x", "abc"])
    func badCodes(text: String) {
        #expect(refusal("code=" + text)
            == "bad value for code: \"\(text)\" (a code like 404, a range like 500-599, or a class like 5xx)")
    }

    /// Namespaces are plain names: a `/` in one is a mistake that would otherwise match nothing.
    @Test(arguments: [("ns=a/b", "ns", "a/b", "a namespace name, without /"),
                      ("destination_ns=a/b", "destination_ns", "a/b", "a namespace name, without /"),
                      ("destination=ns/demo/x", "destination", "ns/demo/x", "ns/NAME: a namespace has no namespace")])
    func aQualifiedNamespaceIsRefused(query: String, name: String, value: String, expected: String) {
        #expect(refusal(query) == "bad value for \(name): \"\(value)\" (\(expected))")
    }
}
