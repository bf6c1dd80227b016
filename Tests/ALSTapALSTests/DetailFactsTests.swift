import Testing

@testable import ALSTapALS

/// The facts only header, user-agent, label and error filters read (`FactsNeed.details`), from
/// decoded messages.
@Suite struct DetailFactsTests {
    func decode(_ message: [UInt8], facts: FactsNeed, redacted: [String] = []) throws -> EntryFactsTable {
        var reporter = Reporter()
        let batch = try message.withUnsafeBytes {
            try ALSDecoder(redactedHeaders: redacted).decode($0, reporter: &reporter, formats: [], facts: facts, decodedAtNanos: 0)
        }
        return try #require(batch.facts)
    }

    func string(_ ref: StringRef, _ table: EntryFactsTable) -> String {
        String(decoding: table.bytes(ref), as: UTF8.self)
    }

    func pairs(_ range: PairRange, _ table: EntryFactsTable) -> [String] {
        table.pairs[Int(range.first)..<Int(range.first + range.count)].map { string($0.name, table) + "=" + string($0.value, table) }
    }

    @Test func headersUserAgentTrailersAndReporterLabels() throws {
        let table = try decode(DecodingTests.fixture("http.bin"), facts: [.filters, .details])
        let f = table.facts[0]
        #expect(string(f.userAgent, table) == "Mozilla/5.0 \u{e9}\u{4e16}\u{1F600}")
        #expect(pairs(f.headers, table) == ["x-b3-traceid=80f198ee56343ba864fe8b2a57d3eff7", "content-type=application/json"])
        #expect(f.grpcStatus == 14)
        #expect(pairs(f.reporterLabels, table) == ["app=reviews", "version=v2"])
        #expect(f.bytesSent == 4567)
        // The second entry has none of it, but the reporter's labels.
        let second = table.facts[1]
        #expect((second.userAgent.length, second.headers.count, second.grpcStatus) == (0, 0, -1))
        #expect(pairs(second.reporterLabels, table) == ["app=reviews", "version=v2"])
    }

    @Test func redactedHeadersCannotBeMatchedByValue() throws {
        let table = try decode(DecodingTests.fixture("http.bin"), facts: [.filters, .details], redacted: ["X-B3-TraceId"])
        #expect(pairs(table.facts[0].headers, table) == ["x-b3-traceid=[redacted]", "content-type=application/json"])
    }

    @Test func withoutDetailsNoneAreComputed() throws {
        let table = try decode(DecodingTests.fixture("http.bin"), facts: .filters)
        let f = table.facts[0]
        #expect((f.userAgent.length, f.headers.count, f.reporterLabels.count, f.grpcStatus) == (0, 0, 0, -1))
        #expect(table.pairs.isEmpty)
        #expect(f.bytesSent == 4567, "min_bytes and max_bytes need no details")
    }

    /// Istio's peer metadata: `app` and `version` at the top, the exported labels in `labels`;
    /// values that are not strings are left out.
    @Test func peerLabelsFromIstioPeerMetadata() throws {
        let labels = Proto.entry("team", Proto.field(3, "books")) + Proto.entry("replicas", Proto.field(2, fixed64: 3))
        let peer = Proto.entry("workload", Proto.field(3, "reviews-v2")) + Proto.entry("app", Proto.field(3, "reviews"))
            + Proto.entry("version", Proto.field(3, "v2")) + Proto.entry("labels", Proto.field(5, labels))
            + Proto.entry("namespace", Proto.field(3, "books"))
        let any = Proto.field(1, "type.googleapis.com/google.protobuf.Struct") + Proto.field(2, peer)
        let common = Proto.field(15, "outbound|9080||reviews.books.svc.cluster.local")
            + Proto.field(21, Proto.field(1, "upstream_peer") + Proto.field(2, any))
        let message = Proto.field(2, Proto.field(1, Proto.field(1, common)))
        let table = try decode(message, facts: [.filters, .details])
        #expect(pairs(table.facts[0].peerLabels, table) == ["app=reviews", "version=v2", "team=books"])
        #expect(string(table.facts[0].destinationWorkload, table) == "reviews-v2")
    }

    /// A peer with more labels than a list holds: the first ones are kept, the entry still decodes.
    @Test func labelListsAreBounded() throws {
        var labels: [UInt8] = []
        for i in 0..<200 { labels += Proto.entry("k\(i)", Proto.field(3, "v")) }
        let any = Proto.field(1, "type.googleapis.com/google.protobuf.Struct") + Proto.field(2, Proto.entry("labels", Proto.field(5, labels)))
        let common = Proto.field(15, "outbound|9080||reviews.books.svc.cluster.local")
            + Proto.field(21, Proto.field(1, "upstream_peer") + Proto.field(2, any))
        let table = try decode(Proto.field(2, Proto.field(1, Proto.field(1, common))), facts: [.filters, .details])
        #expect(table.facts[0].peerLabels.count == UInt32(EntryFactsBuilder.maxPairsPerList))
    }
}

/// Protobuf wire bytes by hand.
enum Proto {
    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var out: [UInt8] = []
        while value >= 0x80 {
            out.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        return out + [UInt8(value)]
    }

    static func field(_ number: UInt64, _ payload: [UInt8]) -> [UInt8] {
        varint(number << 3 | 2) + varint(UInt64(payload.count)) + payload
    }

    static func field(_ number: UInt64, _ text: String) -> [UInt8] { field(number, Array(text.utf8)) }

    static func field(_ number: UInt64, fixed64 value: Double) -> [UInt8] {
        varint(number << 3 | 1) + withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init)
    }

    /// A google.protobuf.Struct `fields` entry.
    static func entry(_ key: String, _ value: [UInt8]) -> [UInt8] { field(1, field(1, key) + field(2, value)) }
}
