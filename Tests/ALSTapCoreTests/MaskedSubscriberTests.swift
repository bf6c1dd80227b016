import ALSTapALS
import ALSTapCore
import ALSTapMetrics
import ALSTapTestSupport
import Foundation
import Testing

/// Masked subscribers (`fields=`): their lines projected once per batch and mask on a loop, and
/// lines written for masked subscribers only never reaching the others.
@Suite struct MaskedSubscriberTests {
    func testEntry(_ edit: (inout TestEntry) -> Void) -> TestEntry {
        var entry = TestEntry()
        edit(&entry)
        return entry
    }

    func masked(_ mask: String, _ shared: MaskedLines) -> Subscriber {
        Subscriber(format: .json, filter: nil, fields: (try! FieldMask(parsing: mask), shared), capacityLines: 100,
                   counters: Counters(), clock: { 0 })
    }

    @Test func subscribersWithOneMaskShareItsBytes() {
        let shared = MaskedLines()
        let a = masked("request.path", shared), b = masked("request.path", shared), c = masked("response", shared)
        let batch = makeBatch([testEntry { $0.path = "/a"; $0.code = 503 }, testEntry { $0.path = "/b" }])
        for s in [a, b, c] { s.offer(batch) }
        let lines = [#"{"type":"http","request":{"path":"/a"}}"#, #"{"type":"http","request":{"path":"/b"}}"#]
        #expect(written(a) == lines)
        #expect(written(b) == lines)
        #expect(written(c) == [#"{"type":"http","response":{"code":503}}"#, #"{"type":"http","response":{"code":200}}"#])
        // One projection, held by both queues, smaller than the lines.
        var slices: [UnsafeRawPointer] = []
        for s in [a, b] {
            s.offer(batch)
            s.forEachQueuedSlice { slices.append($0.baseAddress!); return false }
        }
        #expect(slices[0] == slices[1])
        #expect(a.pinnedBytes < batch.json!.bytes.count)
    }

    /// Lines the decoder wrote for masked subscribers only hold what their masks keep: a whole-line
    /// subscriber, or a mask needing another member, takes none of them.
    @Test func reducedLinesReachOnlyTheMasksTheyCover() {
        let full = makeBatch([testEntry { $0.path = "/a" }])
        let reduced = EncodedBatch(entryCount: 1, isTCP: false,
                                   json: EncodedLines(bytes: full.json!.bytes, lineEnds: full.json!.lineEnds,
                                                      kept: JSONMembers(bits: 0b11 | 1 << UInt64(JSONMember.request.rawValue))),
                                   text: nil, facts: full.facts, decodedAtNanos: 0)
        let shared = MaskedLines()
        let whole = Subscriber(format: .json, filter: nil, capacityLines: 100, counters: Counters(), clock: { 0 })
        let covered = masked("request.path", shared), uncovered = masked("request.path,response.code", shared)
        for s in [whole, covered, uncovered] { s.offer(reduced) }
        #expect(written(whole).isEmpty)
        #expect(written(covered) == [#"{"type":"http","request":{"path":"/a"}}"#])
        #expect(written(uncovered).isEmpty)
        #expect(whole.needs.jsonMembers.isAll && !whole.needs.formats.contains(.memberIndex))
        #expect(covered.needs.formats.contains(.memberIndex))
        #expect(covered.needs.jsonMembers == JSONMembers(bits: 0b11 | 1 << UInt64(JSONMember.request.rawValue)))
    }
}
