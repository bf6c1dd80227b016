import ALSTapALS
import ALSTapFilter
import ALSTapTestSupport
import Testing

/// A request with logged headers and both sides' labels.
private let labelled = entry {
    $0 = outboundCall
    $0.userAgent = "curl/8.5.0"
    $0.headers = [("x-tenant", "acme"), ("content-type", "application/json, charset=utf-8"), ("x-empty", "")]
    $0.reporterLabels = [("app", "productpage"), ("version", "v1")]
    $0.peerLabels = [("app", "reviews"), ("version", "v2"), ("canary", "true")]
}

/// The new clauses of issue 18 and the negation of every clause, against the same entries.
@Suite struct NegationAndDetailTests {
    /// Every filter parameter with a value that matches `outboundCall` and one that does not: its
    /// negation splits them the other way round.
    static let clauses: [(String, String, String)] = [
        ("ns", "demo", "ops"), ("workload", "reviews-v1", "grafana"), ("pod", "reviews-v1-xyz", "x"),
        ("destination", "workload/reviews-v1", "workload/productpage-v1"), ("destination_ns", "shop", "demo"),
        ("method", "GET", "POST"), ("path", "/", "/x"), ("authority", "", ""), ("scheme", "http", "https"),
        ("direction", "out", "in"), ("code", "2xx", "5xx"), ("min_duration", "1ms", "2ms"),
        ("max_duration", "1ms", "999us"), ("min_bytes", "100", "101"), ("max_bytes", "100", "99"), ("type", "http", "tcp"),
        ("reporter", "workload/productpage-v1", "workload/reviews-v1"), ("header", "x-tenant:acme", "x-tenant:other"),
        ("user_agent", "curl/", "kube-probe/"), ("label", "app=reviews", "app=ratings"),
        ("reporter_label", "app=productpage", "app=reviews"), ("errors", "0", "1"), ("probes", "0", "1"),
    ]

    @Test func everyClauseAndItsNegation() throws {
        let call = entry { $0 = labelled; $0.bytesSent = 100 }
        var covered = Set<String>()
        for (name, yes, no) in Self.clauses where !yes.isEmpty {
            covered.insert(name)
            #expect(try matches("\(name)=\(yes)", call), "\(name)=\(yes)")
            #expect(try !matches("!\(name)=\(yes)", call), "!\(name)=\(yes)")
            #expect(try !matches("\(name)=\(no)", call), "\(name)=\(no)")
            #expect(try matches("!\(name)=\(no)", call), "!\(name)=\(no)")
        }
        // Every filter but the ones an entry of the suite's shape cannot split here (authority:
        // the entry has none; flags: below; log_name, trace_id: elsewhere).
        let untested = Set(TapQuery.filterParameters).subtracting(covered)
        #expect(untested == ["authority", "flags", "log_name", "trace_id"])
        try expectSplits("!flags=UH", yes: outboundCall, no: entry { $0 = outboundCall; $0.flags = 1 << 1 })
        #expect(try matches("!trace_id=0123456789abcdef0123456789abcdef", outboundCall))
        #expect(try !matches("trace_id=0123456789abcdef0123456789abcdef", outboundCall))
    }

    @Test func repeatedNegationsMeanNoneOfThem() throws {
        let query = "!method=GET&!method=HEAD"
        #expect(try !matches(query, entry { $0.method = "GET" }))
        #expect(try !matches(query, entry { $0.method = "HEAD" }))
        #expect(try matches(query, entry { $0.method = "POST" }))
        // A comma list is repeats too; beside a positive clause of the same name, both hold.
        #expect(try !matches("!code=500,503", entry { $0.code = 503 }))
        #expect(try matches("code=5xx&!code=503", entry { $0.code = 500 }))
        #expect(try !matches("code=5xx&!code=503", entry { $0.code = 503 }))
        // An entry without the field is not one of the values.
        #expect(try matches("!code=5xx", entry { $0.code = 0 }))
        #expect(try matches("!path=/healthz", entry { $0.path = "/api" }))
        #expect(try !matches("!path=/healthz", entry { $0.path = "/healthz/live" }))
    }

    @Test func headersByPresenceAndExactValue() throws {
        #expect(try matches("header=x-tenant", labelled))
        #expect(try matches("header=X-Tenant:acme", labelled), "names compare without regard to case")
        #expect(try !matches("header=x-tenant:ACME", labelled), "values are exact")
        #expect(try !matches("header=x-tenant:acm", labelled))
        #expect(try matches("header=content-type:application/json, charset=utf-8", labelled), "a comma is data")
        #expect(try matches("header=x-empty:", labelled))
        #expect(try !matches("header=x-missing", labelled))
        #expect(try matches("header=x-missing&header=x-tenant", labelled), "repeats OR")
        #expect(try !matches("header=x-missing&!header=x-tenant", labelled))
        #expect(try matches("!header=x-missing", labelled))
        #expect(refusal("header=bad name") != nil)
        #expect(refusal("header=:value") != nil)
    }

    @Test func userAgentPrefix() throws {
        try expectSplits("user_agent=curl/", yes: labelled, no: outboundCall)
        #expect(try matches("user_agent=Mozilla/5.0 (X11, Linux)&user_agent=curl", labelled), "repeats OR")
        #expect(try !matches("user_agent=Mozilla/5.0 (X11, Linux)", labelled), "a comma is data")
    }

    @Test func labelSelectors() throws {
        #expect(try matches("label=app=reviews", labelled), "the peer's")
        #expect(try matches("label=app=productpage", labelled), "the reporter's")
        #expect(try matches("label=app=reviews,version=v2", labelled))
        #expect(try !matches("label=app=reviews,version=v1", labelled), "one side must meet every requirement")
        #expect(try matches("label=app==reviews,canary", labelled))
        #expect(try matches("label=version!=v1", labelled))
        #expect(try matches("label=app=reviews,!legacy", labelled))
        #expect(try !matches("label=app=reviews,!canary", labelled))
        #expect(try matches("label=version!=v1,app=productpage", labelled) == false)
        // kubectl: `!=` holds where the label is absent; but a side without labels is unknown.
        #expect(try matches("label=tier!=db", labelled))
        #expect(try !matches("label=app=reviews", outboundCall), "no labels")
        #expect(try !matches("label=version!=v1", outboundCall), "unknown labels meet no selector")
        #expect(try !matches("label=!legacy", outboundCall))
        #expect(try matches("!label=app=reviews", outboundCall))
        #expect(try matches("reporter_label=version=v1", labelled))
        #expect(try !matches("reporter_label=app=reviews", labelled), "the peer is not the reporter")
        // Repeated selectors OR.
        #expect(try matches("label=app=x&label=app=reviews", labelled))
        #expect(try matches("label=app=x,app=y", labelled) == false)
        for bad in ["label=", "label=a=b=c", "label=,", "label=!", "label==v", "label=a!=b=c", "label=env in (a,b)",
                    "label=app = x", "label=a=b c", "label=a;b"] {
            #expect(refusal(bad) != nil, "\(bad)")
        }
    }

    @Test func errorsPreset() throws {
        #expect(try matches("errors=1", entry { $0.code = 503 }))
        #expect(try !matches("errors=1", entry { $0.code = 404 }))
        #expect(try matches("errors=1", entry { $0.code = 200; $0.flags = 1 }))
        #expect(try matches("errors=1", entry { $0.code = 200; $0.grpcStatus = 14 }))
        #expect(try !matches("errors=1", entry { $0.code = 200; $0.grpcStatus = 0 }))
        #expect(try matches("errors=0", entry { $0.code = 200 }))
        #expect(try matches("!errors=0", entry { $0.code = 500 }), "!errors=0 is errors=1")
        #expect(refusal("errors=yes") != nil)
    }

    @Test func probesPreset() throws {
        let probe = entry { $0.userAgent = "kube-probe/1.29"; $0.path = "/ready" }
        let istioHealth = entry { $0.path = "/healthz/ready" }
        let rewrittenProbe = entry { $0.path = "/app-health/reviews/readyz" }
        let scrape = entry { $0.userAgent = "Prometheus/2.45"; $0.path = "/stats/prometheus" }
        for noise in [probe, istioHealth, rewrittenProbe, scrape] {
            #expect(try !matches("probes=0", noise))
            #expect(try matches("probes=1", noise))
        }
        #expect(try matches("probes=0", labelled))
        #expect(try matches("probes=0&errors=1", entry { $0.code = 500 }), "the errors-only tap without probes")
    }

    @Test func durationAndSizeRanges() throws {
        try expectSplits("max_duration=5ms", yes: entry { $0.durationMicros = 5_000 }, no: entry { $0.durationMicros = 5_001 })
        #expect(try !matches("max_duration=5ms", entry { $0.durationMicros = -1 }), "no duration is not fast")
        try expectSplits("min_bytes=1k", yes: entry { $0.bytesSent = 1024 }, no: entry { $0.bytesSent = 1023 })
        try expectSplits("max_bytes=2M", yes: entry { $0.bytesSent = 2 << 20 }, no: entry { $0.bytesSent = (2 << 20) + 1 })
        #expect(try matches("min_duration=1ms&max_duration=2ms", entry { $0.durationMicros = 1_500 }))
        for bad in ["min_bytes=-1", "max_bytes=1T", "min_bytes=1.5k", "max_bytes=99999999999999999999", "max_duration=5"] {
            #expect(refusal(bad) != nil, "\(bad)")
        }
    }

    @Test func detailsAreComputedOnlyForFiltersThatReadThem() throws {
        #expect(try filter("ns=a&!method=GET&max_bytes=1").factsNeed == .filters)
        for query in ["header=a", "!user_agent=x", "label=a=b", "reporter_label=a", "errors=1", "probes=0"] {
            #expect(try filter(query).factsNeed == [.filters, .details], "\(query)")
        }
    }

    @Test func negatingWhatIsNotAFilterIsRefused() {
        for query in ["!format=json", "!last=5", "!fields=type", "!pair=1", "!nope=1"] {
            #expect(refusal(query) != nil, "\(query)")
        }
        #expect(refusal("!fields=type")?.contains("cannot be negated") == true)
    }

    @Test func negatedClausesGoToPeersAsTheyCame() throws {
        let query = try parse("ns=a&!path=/healthz&label=app=x,version!=v1&header=accept:a,b")
        #expect(query.filterQuery == "ns=a&!path=/healthz&label=app%3Dx,version%21%3Dv1&header=accept%3Aa,b")
        #expect(try parse(query.filterQuery).filter == query.filter)
    }
}
