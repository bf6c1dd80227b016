import ALSTapALS
import ALSTapFilter
import ALSTapHTTP1
import ALSTapTestSupport
import Testing

/// `/tap?QUERY` parsed as the server does.
func parse(_ query: String) throws(TapQuery.Error) -> TapQuery {
    try TapQuery(RequestTarget("/tap?" + query).query)
}

/// The filter of `query`; records an issue (and throws) when it does not parse or has none.
func filter(_ query: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> TapFilter {
    try #require(try parse(query).filter, "\(query) has no filter", sourceLocation: sourceLocation)
}

/// The message `query` is refused with; nil when it parses.
func refusal(_ query: String) -> String? {
    do {
        _ = try parse(query)
        return nil
    } catch {
        return error.message
    }
}

/// An entry: the defaults with `edit` applied.
func entry(_ edit: (inout TestEntry) -> Void) -> TestEntry {
    var entry = TestEntry()
    edit(&entry)
    return entry
}

/// True when `query`'s filter matches `entry` (in a batch of its own).
func matches(_ query: String, _ entry: TestEntry, sourceLocation: SourceLocation = #_sourceLocation) throws -> Bool {
    let filter = try filter(query, sourceLocation: sourceLocation)
    let table = try #require(makeBatch([entry]).facts, sourceLocation: sourceLocation)
    return filter.matches(table.facts[0], in: table)
}

/// Expects `query` to match `yes` and not `no`.
func expectSplits(_ query: String, yes: TestEntry, no: TestEntry, sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(try matches(query, yes, sourceLocation: sourceLocation), "\(query) should match", sourceLocation: sourceLocation)
    #expect(try !matches(query, no, sourceLocation: sourceLocation), "\(query) should not match", sourceLocation: sourceLocation)
}
