import ALSTapALS
import ALSTapFilter
import ALSTapTestSupport
import Testing

/// productpage-v1 (demo) calling reviews-v1 (shop), as its own sidecar reports it.
let outboundCall = entry {
    $0.direction = .outbound
    ($0.sourceNamespace, $0.sourceWorkload, $0.sourcePod) = ("demo", "productpage-v1", "productpage-v1-abc")
    ($0.destinationNamespace, $0.destinationWorkload, $0.destinationPod) = ("shop", "reviews-v1", "reviews-v1-xyz")
    $0.destinationService = "reviews"
    ($0.reporterWorkload, $0.reporterPod) = ("productpage-v1", "productpage-v1-abc")
}

/// The same call as reviews-v1's sidecar reports it.
let inboundCall = entry {
    $0 = outboundCall
    $0.direction = .inbound
    $0.destinationService = ""
    ($0.reporterWorkload, $0.reporterPod) = ("reviews-v1", "reviews-v1-xyz")
}

/// Something else entirely: another namespace, other workloads.
let unrelatedCall = entry {
    ($0.sourceNamespace, $0.sourceWorkload, $0.sourcePod) = ("ops", "prometheus", "prometheus-0")
    ($0.destinationNamespace, $0.destinationWorkload, $0.destinationPod) = ("ops", "grafana", "grafana-0")
}

/// Each clause of the filter table in README, with an entry it matches and one it does not.
@Suite struct FilterMatchingTests {
    @Test func namespaceMatchesEitherSide() throws {
        try expectSplits("ns=demo", yes: outboundCall, no: unrelatedCall)
        try expectSplits("ns=shop", yes: outboundCall, no: unrelatedCall)
    }

    @Test func workloadMatchesEitherSide() throws {
        try expectSplits("workload=productpage-v1", yes: outboundCall, no: unrelatedCall)
        try expectSplits("workload=reviews-v1", yes: inboundCall, no: unrelatedCall)
        // A namespace's name is not a workload's.
        try expectSplits("workload=ops", yes: entry { $0.sourceWorkload = "ops" }, no: unrelatedCall)
    }

    @Test func qualifiedWorkloadNeedsItsNamespaceOnTheSameSide() throws {
        try expectSplits("workload=shop/reviews-v1", yes: outboundCall,
                         no: entry { $0 = outboundCall; $0.destinationNamespace = "demo" })
        // demo is the source's namespace, reviews-v1 the destination's workload: no match.
        #expect(try !matches("workload=demo/reviews-v1", outboundCall))
    }

    @Test func podWithAndWithoutNamespace() throws {
        try expectSplits("pod=reviews-v1-xyz", yes: outboundCall, no: unrelatedCall)
        try expectSplits("pod=productpage-v1-abc", yes: inboundCall, no: unrelatedCall)
        try expectSplits("pod=shop/reviews-v1-xyz", yes: outboundCall,
                         no: entry { $0 = outboundCall; $0.destinationNamespace = "other" })
        #expect(try !matches("pod=shop/productpage-v1-abc", outboundCall))
    }

    @Test(arguments: ["destination=ns/", "destination_ns="])
    func destinationNamespace(parameter: String) throws {
        // shop is only the destination's namespace, demo only the source's.
        try expectSplits(parameter + "shop", yes: outboundCall,
                         no: entry { $0 = outboundCall; $0.destinationNamespace = "other" })
        #expect(try !matches(parameter + "demo", outboundCall))
    }

    @Test func destinationWorkload() throws {
        try expectSplits("destination=workload/reviews-v1", yes: inboundCall, no: unrelatedCall)
        #expect(try !matches("destination=workload/productpage-v1", outboundCall))
        try expectSplits("destination=workload/shop/reviews-v1", yes: outboundCall,
                         no: entry { $0 = outboundCall; $0.destinationNamespace = "demo" })
    }

    @Test func destinationPod() throws {
        try expectSplits("destination=pod/reviews-v1-xyz", yes: outboundCall, no: unrelatedCall)
        #expect(try !matches("destination=pod/productpage-v1-abc", outboundCall))
        #expect(try matches("destination=pod/shop/reviews-v1-xyz", outboundCall))
    }

    @Test func reporterWorkloadAndPod() throws {
        try expectSplits("reporter=workload/reviews-v1", yes: inboundCall, no: outboundCall)
        try expectSplits("reporter=pod/productpage-v1-abc", yes: outboundCall, no: inboundCall)
        // Not the reporter, though it is the destination.
        #expect(try !matches("reporter=pod/reviews-v1-xyz", outboundCall))
    }

    /// The reporter is the destination of an inbound entry and the source of an outbound one.
    @Test func reporterNamespaceIsItsSidesNamespace() throws {
        #expect(try matches("reporter=workload/shop/reviews-v1", inboundCall))
        #expect(try !matches("reporter=workload/demo/reviews-v1", inboundCall))
        #expect(try matches("reporter=workload/demo/productpage-v1", outboundCall))
        #expect(try !matches("reporter=workload/shop/productpage-v1", outboundCall))
        #expect(try matches("reporter=pod/shop/reviews-v1-xyz", inboundCall))
    }

    @Test(arguments: ["method=POST", "method=post", "method=Post"])
    func methodInAnyCase(query: String) throws {
        try expectSplits(query, yes: entry { $0.method = "POST" }, no: entry { $0.method = "GET" })
        #expect(try !matches(query, entry { $0.method = "" }))
    }

    @Test func pathPrefix() throws {
        try expectSplits("path=/api", yes: entry { $0.path = "/api/v1/users" }, no: entry { $0.path = "/ap" })
        #expect(try matches("path=/api", entry { $0.path = "/api" }))
        #expect(try !matches("path=/api", entry { $0.path = "/v1/api" }))
        #expect(try !matches("path=/", entry { $0.path = "" }))
    }

    @Test func authorityIsExact() throws {
        try expectSplits("authority=reviews:9080", yes: entry { $0.authority = "reviews:9080" },
                         no: entry { $0.authority = "reviews:90801" })
        #expect(try !matches("authority=reviews:9080", entry { $0.authority = "reviews" }))
        #expect(try !matches("authority=reviews", entry { $0.authority = "REVIEWS" }))
    }

    @Test func schemeInAnyCase() throws {
        try expectSplits("scheme=HTTPS", yes: entry { $0.scheme = "https" }, no: entry { $0.scheme = "http" })
        #expect(try matches("scheme=https", entry { $0.scheme = "HTTPS" }))
        #expect(try !matches("scheme=https", entry { $0.scheme = "" }))
    }

    @Test func direction() throws {
        for query in ["direction=in", "direction=inbound"] {
            try expectSplits(query, yes: inboundCall, no: outboundCall)
        }
        for query in ["direction=out", "direction=outbound"] {
            try expectSplits(query, yes: outboundCall, no: inboundCall)
        }
        #expect(try !matches("direction=in,out", entry { $0.direction = .unknown }))
    }

    @Test func codeExactRangeAndClass() throws {
        try expectSplits("code=404", yes: entry { $0.code = 404 }, no: entry { $0.code = 403 })
        try expectSplits("code=500-502", yes: entry { $0.code = 502 }, no: entry { $0.code = 503 })
        #expect(try matches("code=500-502", entry { $0.code = 500 }))
        try expectSplits("code=4xx", yes: entry { $0.code = 499 }, no: entry { $0.code = 500 })
        #expect(try matches("code=4xx", entry { $0.code = 400 }))
        #expect(try !matches("code=4xx", entry { $0.code = 399 }))
    }

    /// An entry without a code (TCP, a reset before the response) is in no code range.
    @Test(arguments: ["code=1xx", "code=100-599", "code=200"])
    func noCodeNeverMatches(query: String) throws {
        #expect(try !matches(query, entry { $0.code = 0 }))
        #expect(try !matches(query, entry { $0.isTCP = true; $0.code = 0 }))
    }

    @Test func flagsMatchAnyOfTheirBits() throws {
        let uh = UInt32(1) << (ResponseFlagCodes.fieldNumber(of: "UH")! - 1)
        let uf = UInt32(1) << (ResponseFlagCodes.fieldNumber(of: "UF")! - 1)
        let dc = UInt32(1) << (ResponseFlagCodes.fieldNumber(of: "DC")! - 1)
        try expectSplits("flags=UH", yes: entry { $0.flags = uh | dc }, no: entry { $0.flags = uf })
        try expectSplits("flags=UH,UF", yes: entry { $0.flags = uf }, no: entry { $0.flags = dc })
        #expect(try !matches("flags=UH", entry { $0.flags = 0 }))
    }

    @Test func minDuration() throws {
        try expectSplits("min_duration=250ms", yes: entry { $0.durationMicros = 250_000 },
                         no: entry { $0.durationMicros = 249_999 })
        // No duration is shorter than any.
        #expect(try !matches("min_duration=0us", entry { $0.durationMicros = -1 }))
        #expect(try matches("min_duration=0us", entry { $0.durationMicros = 0 }))
    }

    @Test func entryType() throws {
        try expectSplits("type=tcp", yes: entry { $0.isTCP = true }, no: entry { $0.isTCP = false })
        try expectSplits("type=http", yes: entry { $0.isTCP = false }, no: entry { $0.isTCP = true })
    }

    @Test func logName() throws {
        try expectSplits("log_name=outbound_http", yes: entry { $0.logName = "outbound_http" },
                         no: entry { $0.logName = "outbound_http2" })
        #expect(try !matches("log_name=outbound_http", entry { $0.logName = "" }))
    }

    @Test(arguments: ["code=404&code=503", "code=404,503", "code=404,,503", "code=404&code=500-599"])
    func valuesOfOneParameterOr(query: String) throws {
        #expect(try matches(query, entry { $0.code = 404 }))
        #expect(try matches(query, entry { $0.code = 503 }))
        #expect(try !matches(query, entry { $0.code = 200 }))
    }

    @Test func differentParametersAnd() throws {
        let query = "ns=demo&method=GET&code=5xx"
        let hit = entry { $0 = outboundCall; $0.code = 503 }
        #expect(try matches(query, hit))
        #expect(try !matches(query, entry { $0 = hit; $0.method = "POST" }))
        #expect(try !matches(query, entry { $0 = hit; $0.code = 200 }))
        #expect(try !matches(query, entry { $0 = unrelatedCall; $0.code = 503 }))
        // Repeats OR, and the clause still ANDs with the others.
        #expect(try matches("ns=ops&ns=demo&code=5xx", hit))
        #expect(try !matches("ns=ops&ns=demo&code=4xx", hit))
    }

    /// Without peer metadata an outbound destination has only the service name of its cluster.
    @Test func outboundDestinationKnownByServiceName() throws {
        let bare = entry { $0 = outboundCall; $0.destinationWorkload = ""; $0.destinationPod = "" }
        for query in ["workload=reviews", "workload=shop/reviews", "destination=workload/reviews",
                      "destination=workload/shop/reviews"] {
            #expect(try matches(query, bare), "\(query)")
        }
        #expect(try !matches("workload=demo/reviews", bare))
        // Known by its workload, the destination is not also known by its service.
        #expect(try !matches("workload=reviews", outboundCall))
        #expect(try matches("workload=reviews-v1", outboundCall))
    }

    /// A pair matches if either half does; the clauses AND within one half.
    @Test func pairedRecordMatchesIfEitherHalfDoes() throws {
        let failingInbound = entry { $0 = inboundCall; $0.code = 503 }
        let failingOutbound = entry { $0 = outboundCall; $0.code = 503 }
        let fine = entry { $0 = inboundCall; $0.code = 200 }
        // Records: (outbound, failing inbound), (failing outbound, fine inbound).
        let facts = try #require(makeBatch([outboundCall, failingInbound, failingOutbound, fine]).facts)
        let pairs = EntryFactsTable(facts: facts.facts, strings: facts.strings, stride: 2)
        let inboundFailure = try filter("direction=in&code=5xx").matcher
        #expect(inboundFailure.matches(record: 0, in: pairs))
        // The outbound half has the 5xx, the inbound half the direction: neither half matches.
        #expect(!inboundFailure.matches(record: 1, in: pairs))
        // Here only the first half can match.
        let outboundFailure = try filter("direction=out&code=5xx").matcher
        #expect(!outboundFailure.matches(record: 0, in: pairs))
        #expect(outboundFailure.matches(record: 1, in: pairs))
    }
}
