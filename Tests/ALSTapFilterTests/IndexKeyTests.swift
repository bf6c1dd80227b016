import ALSTapALS
import ALSTapFilter
import ALSTapTestSupport
import PropertyBased
import Testing

/// The key a filter offers the subscriber index, and that it never hides a matching entry.
@Suite struct IndexKeyTests {
    /// The key of `query`'s filter.
    func indexKey(_ query: String) throws -> TapFilter.IndexKey? {
        try filter(query).indexKey
    }

    /// The hashes an entry with these values on one side has for `field`.
    func sideHashes(_ field: TapFilter.IndexKey.Field, namespace: String, workload: String) throws -> UInt64? {
        let e = entry {
            $0.direction = .outbound
            ($0.destinationNamespace, $0.destinationWorkload) = (namespace, workload)
        }
        let table = try #require(makeBatch([e]).facts)
        return TapFilter.IndexKey.hashes(field, table.facts[0], in: table, withSource: false).destination
    }

    @Test func qualifiedWorkloadGivesANamespacedWorkload() throws {
        let key = try #require(try indexKey("workload=demo/reviews-v1"))
        #expect(key.field == .namespacedWorkload)
        #expect(!key.destinationOnly)
        let expected = try #require(try sideHashes(.namespacedWorkload, namespace: "demo", workload: "reviews-v1"))
        #expect(key.hashes == [expected])
    }

    @Test func destinationWorkloadTakesTheDestinationNamespaces() throws {
        let key = try #require(try indexKey("destination_ns=a,b&destination=workload/w,workload/b/x,workload/c/y"))
        #expect(key.field == .namespacedWorkload)
        #expect(key.destinationOnly)
        // w in either namespace, x in b; c/y cannot be in a or b.
        let expected = try [("a", "w"), ("b", "w"), ("b", "x")].map {
            try #require(try sideHashes(.namespacedWorkload, namespace: $0.0, workload: $0.1))
        }
        #expect(Set(key.hashes) == Set(expected))
    }

    /// `ns=` and `workload=` may match on different sides: no namespaced key from the two.
    @Test func eitherSideNamespaceDoesNotQualifyAWorkload() throws {
        for query in ["ns=demo&workload=reviews-v1", "workload=reviews-v1&destination_ns=demo"] {
            let key = try #require(try indexKey(query))
            #expect(key.field == .workload, "\(query)")
            #expect(!key.destinationOnly, "\(query)")
        }
    }

    @Test func destinationComesBeforeEitherSide() throws {
        let workloads = try #require(try indexKey("workload=a&destination=workload/b"))
        #expect((workloads.field, workloads.destinationOnly) == (.workload, true))
        let b = try #require(try sideHashes(.workload, namespace: "", workload: "b"))
        #expect(workloads.hashes == [b])
        let namespaces = try #require(try indexKey("ns=a&destination_ns=b"))
        #expect((namespaces.field, namespaces.destinationOnly) == (.namespace, true))
        // A more selective field still wins over the side.
        let mixed = try #require(try indexKey("workload=a&destination_ns=b"))
        #expect((mixed.field, mixed.destinationOnly) == (.workload, false))
    }

    @Test func podWithNamespaceGivesTheNamespace() throws {
        let key = try #require(try indexKey("pod=demo/p1,shop/p2"))
        #expect((key.field, key.destinationOnly) == (.namespace, false))
        let expected = try ["demo", "shop"].map { try #require(try sideHashes(.namespace, namespace: $0, workload: "")) }
        #expect(Set(key.hashes) == Set(expected))
        let destination = try #require(try indexKey("destination=pod/demo/p1"))
        #expect((destination.field, destination.destinationOnly) == (.namespace, true))
        // One pod without a namespace leaves the namespace open.
        #expect(try indexKey("pod=demo/p1,p2") == nil)
    }

    @Test(arguments: ["pod=p1", "reporter=workload/demo/w", "method=GET&code=5xx&path=/api", "type=tcp",
                      "authority=reviews:9080&log_name=x&direction=in"])
    func noKeyWithoutANamespaceOrWorkloadClause(query: String) throws {
        #expect(try indexKey(query) == nil)
    }

    @Test func sameValuesHashAlikeAndFieldsApart() throws {
        let workload = try sideHashes(.workload, namespace: "a", workload: "x")
        #expect(workload != nil)
        #expect(try sideHashes(.workload, namespace: "b", workload: "x") == workload)
        #expect(try sideHashes(.namespace, namespace: "x", workload: "") != workload)
        let inA = try sideHashes(.namespacedWorkload, namespace: "a", workload: "x")
        #expect(try sideHashes(.namespacedWorkload, namespace: "b", workload: "x") != inA)
        #expect(try sideHashes(.namespacedWorkload, namespace: "", workload: "x") == nil)
        #expect(try sideHashes(.workload, namespace: "a", workload: "") == nil)
    }

    /// A negated clause pins nothing; the positive ones beside it still give their key.
    @Test func negationsPinNothing() throws {
        #expect(try indexKey("!ns=a") == nil)
        #expect(try indexKey("!workload=demo/x&!destination=workload/y&!destination_ns=z") == nil)
        let key = try #require(try indexKey("ns=a&!workload=b&header=x&errors=1&label=app=c"))
        #expect((key.field, key.destinationOnly) == (.namespace, false))
        let workload = try #require(try indexKey("!ns=a&destination=workload/demo/w&probes=0"))
        #expect((workload.field, workload.destinationOnly) == (.namespacedWorkload, true))
    }

    /// Random entries and filters over a tiny alphabet, so values collide often: an entry the
    /// index would not offer (no hash of its sides is the key's) never matches the filter.
    @Test func theIndexHidesNoMatchingEntry() async throws {
        var offered = 0, hidden = 0, matched = 0
        await propertyCheck(count: 2_000, input: randomEntries, randomFilterQueries) { entry, query in
            guard let filter = try? parse(query).filter, let key = filter.indexKey,
                  let table = makeBatch([entry]).facts else { return }
            let (source, destination) = TapFilter.IndexKey.hashes(key.field, table.facts[0], in: table,
                                                                  withSource: !key.destinationOnly)
            let isOffered = [source, destination].contains { $0.map(key.hashes.contains) ?? false }
            let isMatch = filter.matches(table.facts[0], in: table)
            #expect(isOffered || !isMatch, "\(query) matches an entry the index hides: \(entry)")
            if isOffered { offered += 1 } else { hidden += 1 }
            if isMatch { matched += 1 }
        }
        // Not vacuous: both outcomes, and matches, came up.
        #expect(offered > 100 && hidden > 100 && matched > 50)
    }

    /// For random filters (indexed or not): a pair matches if and only if one of its halves does.
    @Test func aPairMatchesIffAHalfDoes() async throws {
        await propertyCheck(count: 500, input: randomEntries, randomEntries, randomFilterQueries) { first, second, query in
            guard let filter = try? parse(query).filter, let facts = makeBatch([first, second]).facts else { return }
            let pairs = EntryFactsTable(facts: facts.facts, strings: facts.strings, stride: 2)
            let either = filter.matches(facts.facts[0], in: facts) || filter.matches(facts.facts[1], in: facts)
            #expect(filter.matcher.matches(record: 0, in: pairs) == either)
        }
    }
}

/// Names drawn from a tiny alphabet; index 0 is absent.
private let names = ["", "a", "b"]

/// Entries whose every name is "", "a" or "b".
private let randomEntries = Gen.int(in: 0...2).array(of: 12).map { n -> TestEntry in
    entry {
        $0.direction = [.unknown, .inbound, .outbound][n[0]]
        ($0.sourceNamespace, $0.sourceWorkload, $0.sourcePod) = (names[n[1]], names[n[2]], names[n[3]])
        ($0.destinationNamespace, $0.destinationWorkload, $0.destinationPod) = (names[n[4]], names[n[5]], names[n[6]])
        $0.destinationService = names[n[7]]
        ($0.reporterWorkload, $0.reporterPod) = (names[n[8]], names[n[9]])
        $0.code = [0, 200, 503][n[10]]
        $0.method = ["", "GET", "POST"][n[11]]
    }
}

/// Queries of one to three parameters with values from the same alphabet, some `NS/NAME`, a
/// third of them negated (`!ns=a`): a negation pins nothing, the index must still narrow by the rest.
private let randomFilterQueries = Gen.int(in: 0...(11 * 2 * 3 * 3 - 1)).array(of: 1...3).map { codes -> String in
    codes.map { negatedCode -> String in
        let code = negatedCode % 66
        let negation = negatedCode >= 132 ? "!" : ""
        let value = names[1 + code % 2]
        let qualified = ["", "a/", "b/"][code / 2 % 3] + value
        let clause = switch code / 6 {
        case 0: "ns=" + value
        case 1: "workload=" + qualified
        case 2: "pod=" + qualified
        case 3: "destination=ns/" + value
        case 4: "destination=workload/" + qualified
        case 5: "destination=pod/" + qualified
        case 6: "destination_ns=" + value
        case 7: "reporter=workload/" + qualified
        case 8: "direction=" + ["in", "out"][code % 2]
        case 9: "code=5xx"
        default: "method=" + ["GET", "POST"][code % 2]
        }
        return negation + clause
    }.joined(separator: "&")
}
