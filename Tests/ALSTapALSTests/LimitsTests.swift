import Foundation
import Testing

@testable import ALSTapALS

/// Protobuf wire bytes built by hand, for inputs no real Envoy sends.
struct Wire {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func field(_ number: UInt64, _ payload: [UInt8]) {
        varint(number << 3 | 2)
        varint(UInt64(payload.count))
        bytes += payload
    }

    mutating func field(_ number: UInt64, _ text: String) { field(number, Array(text.utf8)) }

    static func message(_ build: (inout Wire) -> Void) -> [UInt8] {
        var wire = Wire()
        build(&wire)
        return wire.bytes
    }

    /// A google.protobuf.Struct nested `depth` Structs deep (the innermost empty): {"a": {"a": … {}}}.
    static func nestedStruct(depth: Int) -> [UInt8] {
        var inner: [UInt8] = []
        for _ in 1..<depth {
            let value = message { $0.field(5, inner) }                             // Value.struct_value
            let entry = message { $0.field(1, "a"); $0.field(2, value) }           // FieldsEntry
            inner = message { $0.field(1, entry) }                                 // Struct.fields
        }
        return inner
    }

    /// An HTTP entry with a path (and optionally metadata.filter_metadata["x"] = `metadata`).
    static func httpEntry(path: String, metadata: [UInt8]? = nil) -> [UInt8] {
        message { entry in
            if let metadata {
                let filterEntry = message { $0.field(1, "x"); $0.field(2, metadata) }
                let common = message { $0.field(17, message { $0.field(1, filterEntry) }) }
                entry.field(1, common)
            }
            entry.field(3, message { $0.field(5, path) })
        }
    }

    /// A StreamAccessLogsMessage: an Identifier with `nodeId`/`nodeMetadata`, and HTTP entries.
    static func streamMessage(nodeId: String? = nil, nodeMetadata: [UInt8]? = nil, entries: [[UInt8]]) -> [UInt8] {
        message { m in
            if nodeId != nil || nodeMetadata != nil {
                let node = message { n in
                    if let nodeId { n.field(1, nodeId) }
                    if let nodeMetadata { n.field(3, nodeMetadata) }
                }
                m.field(1, message { $0.field(1, node); $0.field(2, "log") })
            }
            m.field(2, message { logs in for e in entries { logs.field(1, e) } })
        }
    }
}

/// Bounds on what one message may cost: checked before protobuf-c unpacks it, or while it does.
@Suite struct LimitsTests {
    static func decode(_ bytes: [UInt8], limits: DecodeLimits = DecodeLimits(), formats: FormatSet = [.json, .text],
                       reporter: inout Reporter) throws(GRPCStatusError) -> EncodedBatch {
        let decoder = ALSDecoder(limits: limits)
        var result: Result<EncodedBatch, GRPCStatusError>!
        bytes.withUnsafeBytes { payload in
            do throws(GRPCStatusError) {
                result = .success(try decoder.decode(payload, reporter: &reporter, formats: formats, facts: .pairing,
                                                     decodedAtNanos: 0))
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }

    static func lines(_ batch: EncodedBatch) throws -> [[String: Any]] {
        try String(decoding: batch.json!.bytes.bytes, as: UTF8.self).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    @Test(arguments: [3_000, 101])
    func deepNodeMetadataIsRefusedBeforeUnpacking(depth: Int) {
        // Levels count as a JSON value's depth: 101 Structs inside each other are 101.
        let bytes = Wire.streamMessage(nodeId: "n", nodeMetadata: Wire.nestedStruct(depth: depth),
                                       entries: [Wire.httpEntry(path: "/x")])
        var reporter = Reporter()
        #expect(throws: GRPCStatusError.self) { _ = try Self.decode(bytes, reporter: &reporter) }
        do {
            _ = try Self.decode(bytes, reporter: &reporter)
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.reason == .tooDeep)
        }
    }

    @Test func deepEntryMetadataIsRefused() {
        let bytes = Wire.streamMessage(entries: [Wire.httpEntry(path: "/x", metadata: Wire.nestedStruct(depth: 3_000))])
        var reporter = Reporter()
        do {
            _ = try Self.decode(bytes, reporter: &reporter)
            Issue.record("a 3000-deep filter_metadata decoded")
        } catch {
            #expect(error.reason == .tooDeep)
        }
    }

    @Test func nestingUpToTheLimitDecodes() throws {
        let bytes = Wire.streamMessage(nodeId: "n", nodeMetadata: Wire.nestedStruct(depth: 100),
                                       entries: [Wire.httpEntry(path: "/x", metadata: Wire.nestedStruct(depth: 100))])
        var reporter = Reporter()
        let batch = try Self.decode(bytes, reporter: &reporter)
        #expect(batch.entryCount == 1)
        #expect(try Self.lines(batch)[0]["request"].flatMap { ($0 as? [String: Any])?["path"] as? String } == "/x")
    }

    @Test func theDepthLimitIsConfigurable() throws {
        var limits = DecodeLimits()
        limits.maxDepth = 9
        let bytes = Wire.streamMessage(entries: [Wire.httpEntry(path: "/x", metadata: Wire.nestedStruct(depth: 10))])
        var reporter = Reporter()
        #expect(throws: GRPCStatusError.self) { _ = try Self.decode(bytes, limits: limits, reporter: &reporter) }
        #expect(try Self.decode(bytes, reporter: &reporter).entryCount == 1)
    }

    @Test func tooManyEntriesAreRefusedBeforeUnpacking() {
        // 1 000 000 empty entries: 2 bytes each on the wire.
        var logs = Wire()
        for _ in 0..<1_000_000 { logs.field(1, []) }
        let bytes = Wire.message { $0.field(2, logs.bytes) }
        var reporter = Reporter()
        do {
            _ = try Self.decode(bytes, reporter: &reporter)
            Issue.record("a million entries decoded")
        } catch {
            #expect(error.code == .resourceExhausted)
            #expect(error.reason == .tooManyEntries)
        }
    }

    @Test func entriesUpToTheLimitDecode() throws {
        var limits = DecodeLimits()
        limits.maxEntries = 100
        var reporter = Reporter()
        let ok = Wire.streamMessage(entries: Array(repeating: Wire.httpEntry(path: "/a"), count: 100))
        #expect(try Self.decode(ok, limits: limits, reporter: &reporter).entryCount == 100)
        let over = Wire.streamMessage(entries: Array(repeating: Wire.httpEntry(path: "/a"), count: 101))
        #expect(throws: GRPCStatusError.self) { _ = try Self.decode(over, limits: limits, reporter: &reporter) }
    }

    @Test func unpackedMemoryIsBounded() {
        // One entry with 200 000 empty request headers: 2 bytes each on the wire, ~50 unpacked.
        var headers = Wire()
        for _ in 0..<200_000 { headers.field(13, []) }
        let entry = Wire.message { $0.field(3, headers.bytes) }
        var limits = DecodeLimits()
        limits.maxUnpackedBytes = 1 << 20
        var reporter = Reporter()
        do {
            _ = try Self.decode(Wire.streamMessage(entries: [entry]), limits: limits, reporter: &reporter)
            Issue.record("200 000 headers unpacked within 1 MiB")
        } catch {
            #expect(error.code == .resourceExhausted)
            #expect(error.reason == .unpackedTooLarge)
        }
    }

    @Test func linesAreBoundedTooAndTheDecoderRecovers() throws {
        var limits = DecodeLimits()
        limits.maxUnpackedBytes = 256 << 10
        var reporter = Reporter()
        let path = String(repeating: "\u{1}", count: 20_000)  // escaped 6× in JSON
        let bytes = Wire.streamMessage(entries: Array(repeating: Wire.httpEntry(path: path), count: 5))
        do {
            _ = try Self.decode(bytes, limits: limits, reporter: &reporter)
            Issue.record("600 KB of lines within 256 KiB")
        } catch {
            #expect(error.reason == .encodedTooLarge)
        }
        #expect(try Self.decode(Wire.streamMessage(entries: [Wire.httpEntry(path: "/ok")]), limits: limits,
                                reporter: &reporter).entryCount == 1)
    }

    @Test func theReporterIsCappedNotCopiedWhole() throws {
        let huge = String(repeating: "n", count: 256 << 10)
        var reporter = Reporter()
        let bytes = Wire.streamMessage(nodeId: huge, entries: Array(repeating: Wire.httpEntry(path: "/a"), count: 1_000))
        let batch = try Self.decode(bytes, reporter: &reporter)
        #expect(reporter.nodeId.utf8.count == Reporter.maxFieldBytes)
        #expect(batch.json!.bytes.count < 1_000 * 1_000, "each line carries the capped node id only")
    }

    @Test func stringsKeepBytesAfterNUL() throws {
        var reporter = Reporter()
        let batch = try Self.decode(Wire.streamMessage(nodeId: "node\u{0}tail", entries: [Wire.httpEntry(path: "/before\u{0}/after")]),
                                    reporter: &reporter)
        let json = String(decoding: batch.json!.bytes.bytes, as: UTF8.self)
        #expect(json.contains("/before\\u0000/after"))
        #expect(json.contains("node\\u0000tail"))
        let line = try Self.lines(batch)[0]
        #expect((line["request"] as? [String: Any])?["path"] as? String == "/before\u{0}/after")
        let text = String(decoding: batch.text!.bytes.bytes, as: UTF8.self)
        #expect(text.contains("/before?/after"))
        #expect(!text.utf8.contains(0))
    }

    @Test func relayForwardsEntriesAsReceived() throws {
        var reporter = Reporter()
        let entries = [Wire.httpEntry(path: "/a\u{0}b"), Wire.httpEntry(path: "/c", metadata: Wire.nestedStruct(depth: 2))]
        let batch = try Self.decode(Wire.streamMessage(nodeId: "n", entries: entries), formats: [.als], reporter: &reporter)
        let relayed = Array(batch.als!.bytes.bytes)
        var expected = Wire()
        for e in entries { expected.field(1, e) }
        #expect(relayed == expected.bytes)
    }

    @Test func malformedWireFormatIsInvalidArgument() {
        var reporter = Reporter()
        for bytes: [UInt8] in [[0x12, 0x05, 0x0A], [0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
                               [0x13], [0x12, 0x02, 0x0B, 0x00]] {
            do {
                _ = try Self.decode(bytes, reporter: &reporter)
                Issue.record("\(bytes) decoded")
            } catch {
                #expect(error.code == .invalidArgument)
            }
        }
    }
}

/// A ListValue nests in 4 bytes a level, the least the pruning assumes: at the limit it decodes,
/// one more and it is refused, whatever the message's size.
@Suite struct ListNestingTests {
    /// `depth` ListValues inside each other (the innermost empty): [[[…[]]]].
    static func nestedList(depth: Int) -> [UInt8] {
        var inner: [UInt8] = []
        for _ in 1..<depth {
            let value = Wire.message { $0.field(6, inner) }  // Value.list_value
            inner = Wire.message { $0.field(1, value) }      // ListValue.values
        }
        return inner
    }

    @Test(arguments: [(100, true), (101, false)])
    func listsNestUpToTheLimit(depth: Int, accepted: Bool) throws {
        // filter_metadata["x"] is a Struct: {"a": [[[...]]]}, one level more than the lists.
        let value = Wire.message { $0.field(6, Self.nestedList(depth: depth - 1)) }
        let metadata = Wire.message { $0.field(1, Wire.message { $0.field(1, "a"); $0.field(2, value) }) }
        let bytes = Wire.streamMessage(entries: [Wire.httpEntry(path: "/x", metadata: metadata)])
        var reporter = Reporter()
        if accepted {
            #expect(try LimitsTests.decode(bytes, reporter: &reporter).entryCount == 1)
        } else {
            #expect(throws: GRPCStatusError.self) { _ = try LimitsTests.decode(bytes, reporter: &reporter) }
        }
    }
}
