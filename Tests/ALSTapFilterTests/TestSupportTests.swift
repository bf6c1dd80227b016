import ALSTapALS
import ALSTapTestSupport
import Foundation
import Testing

/// `makeBatch` builds what the decoder would: lines, their ends, sections and facts agree.
@Suite struct TestSupportTests {
    /// Entry `index`'s line of `lines`, newline included.
    func line(_ lines: EncodedLines, _ index: Int) -> [UInt8] {
        Array(lines.bytes.bytes[lines.range(index..<(index + 1))])
    }

    func object(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test func jsonLinesAreValidAndSectionsPointAtTheirObjects() throws {
        let http = entry {
            ($0.sourceNamespace, $0.sourceWorkload) = ("demo", "productpage-v1")
            ($0.destinationNamespace, $0.destinationService) = ("shop", "reviews")
            ($0.requestId, $0.path, $0.authority) = ("r-1", "/a\"b\\c\n\u{1}", "reviews:9080")
        }
        let tcp = entry { $0.isTCP = true; $0.requestId = ""; $0.code = 0 }
        let batch = makeBatch([http, tcp], sequence: 7, decodedAtNanos: 42)
        #expect((batch.entryCount, batch.sequence, batch.decodedAtNanos, batch.isTCP) == (2, 7, 42, false))
        let json = try #require(batch.json)
        let facts = try #require(batch.facts)
        #expect(json.lineEnds.count == 2)
        #expect(json.lineEnds.last.map(Int.init) == json.bytes.count)

        let first = line(json, 0)
        #expect(first.last == UInt8(ascii: "\n"))
        let parsed = try object(first)
        #expect(parsed["type"] as? String == "http")
        #expect(parsed["requestId"] as? String == "r-1")
        let request = try #require(parsed["request"] as? [String: Any])
        #expect(request["path"] as? String == "/a\"b\\c\n\u{1}")
        let sections = facts.facts[0].jsonSections
        for (range, name) in [(sections.source, "source"), (sections.destination, "destination"), (sections.request, "request")] {
            let slice = Array(first[Int(range.lowerBound)..<Int(range.upperBound)])
            // The section is exactly the object's text: it parses to the line's object.
            #expect(try object(slice) as? [String: String] == parsed[name] as? [String: String], "\(name)")
            #expect(String(decoding: first[..<Int(range.lowerBound)], as: UTF8.self).hasSuffix("\"\(name)\":"))
        }

        let second = try object(line(json, 1))
        #expect(second["type"] as? String == "tcp")
        #expect(second["requestId"] == nil && second["request"] == nil)
        #expect(facts.facts[1].jsonSections.request.isEmpty)
        #expect(!facts.facts[1].jsonSections.source.isEmpty)
    }

    @Test func textLinesAreOneLineEach() throws {
        let batch = makeBatch([
            TestEntry(.outbound, method: "POST", code: 503, sourceNamespace: "demo", sourceWorkload: "productpage-v1",
                      destinationNamespace: "shop", destinationWorkload: "reviews-v1", path: "/x\ny"),
            entry { $0.isTCP = true; $0.direction = .inbound; $0.durationMicros = 12_345 },
        ])
        let text = try #require(batch.text)
        #expect(String(decoding: line(text, 0), as: UTF8.self)
            == "outbound productpage-v1.demo → reviews-v1.shop POST /x?y 503 1.000ms\n")
        #expect(String(decoding: line(text, 1), as: UTF8.self) == "inbound - → - TCP 12.345ms\n")
    }

    @Test func factsCarryTheEntryValuesInOnePool() throws {
        let e = entry {
            ($0.direction, $0.method, $0.code, $0.flags, $0.durationMicros, $0.startMicros) = (.inbound, "PATCH", 404, 6, 77, 9)
            ($0.destinationPod, $0.reporterWorkload, $0.logName) = ("pod-é", "w", "inbound_http")
            ($0.linkFrom, $0.linkTo, $0.scheme) = ("10.0.0.1:5000", "10.0.0.2:80", "https")
        }
        let table = try #require(makeBatch([TestEntry(), e], formats: .text).facts)
        let f = table.facts[1]
        func string(_ ref: StringRef) -> String { String(decoding: table.bytes(ref), as: UTF8.self) }
        #expect((f.direction, f.method, f.code, f.flags, f.durationMicros, f.startMicros) == (.inbound, 9, 404, 6, 77, 9))
        #expect([f.destinationPod, f.reporterWorkload, f.logName, f.linkFrom, f.linkTo, f.scheme].map(string)
            == ["pod-é", "w", "inbound_http", "10.0.0.1:5000", "10.0.0.2:80", "https"])
        // Absent strings are empty references; GET is RequestMethod 1.
        #expect(f.sourceNamespace.length == 0 && f.requestId.length == 0)
        #expect(table.facts[0].method == 1)
        #expect(table.stride == 1)
    }

    @Test func onlyTheRequestedFormatsAreBuilt() throws {
        let textOnly = makeBatch([TestEntry()], formats: .text)
        #expect(textOnly.json == nil && textOnly.text != nil && textOnly.als == nil)
        // Without JSON lines there are no sections to point at.
        #expect(try #require(textOnly.facts).facts[0].jsonSections.source.isEmpty)
        let jsonOnly = makeBatch([TestEntry()], formats: .json)
        #expect(jsonOnly.json != nil && jsonOnly.text == nil)
        let empty = makeBatch([])
        #expect(empty.entryCount == 0 && empty.json?.lineEnds.isEmpty == true && !empty.isTCP)
        #expect(makeBatch([entry { $0.isTCP = true }]).isTCP)
    }
}
