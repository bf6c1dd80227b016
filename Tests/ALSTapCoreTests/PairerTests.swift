import ALSTapALS
import ALSTapCore
import ALSTapMetrics
import ALSTapTestSupport
import Foundation
import Testing

/// The pairer joins a request's outbound and inbound entries: any order, retries, windows, bounds.
@Suite struct PairerTests {
    static let second: UInt64 = 1_000_000_000

    static func pairer(counters: Counters = Counters(), capacity: Int = 1_000) -> Pairer {
        Pairer(windowNanos: second, capacity: capacity, counters: counters)
    }

    /// The JSON records of a batch of pair records.
    static func records(_ batch: EncodedBatch?) -> [[String: Any]] {
        guard let batch, let json = batch.json else { return [] }
        return (0..<batch.entryCount).compactMap { i in
            let range = json.range(i..<(i + 1))
            let data = Data(UnsafeRawBufferPointer(rebasing: json.bytes.bytes[range]))
            return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        }
    }

    static func half(_ id: String, _ direction: Direction, from: String = "10.0.0.1:5000", to: String = "10.0.0.2:8080",
                     path: String = "/") -> TestEntry {
        var e = TestEntry(direction, sourceNamespace: "a", sourceWorkload: "front", destinationNamespace: "b",
                          destinationWorkload: "back", path: path, requestId: id)
        e.linkFrom = from
        e.linkTo = to
        return e
    }

    @Test(arguments: [true, false]) func halvesPairInEitherOrder(outboundFirst: Bool) {
        let pairer = Self.pairer()
        let out = makeBatch([Self.half("r1", .outbound)])
        let inbound = makeBatch([Self.half("r1", .inbound)])
        #expect(pairer.add(outboundFirst ? out : inbound, now: 0) == nil)
        let records = Self.records(pairer.add(outboundFirst ? inbound : out, now: 1))
        #expect(records.count == 1)
        #expect(records[0]["paired"] as? Bool == true)
        #expect(records[0]["requestId"] as? String == "r1")
        #expect((records[0]["outbound"] as? [String: Any])?["direction"] as? String != nil)
        #expect(records[0]["inbound"] != nil)
        #expect(pairer.pinnedBytes == 0)
    }

    @Test func theRecordLiftsSourceDestinationAndRequestFromTheHalves() throws {
        let pairer = Self.pairer()
        _ = pairer.add(makeBatch([Self.half("r1", .outbound, path: "/reviews/1")]), now: 0)
        let record = try #require(Self.records(pairer.add(makeBatch([Self.half("r1", .inbound)]), now: 0)).first)
        #expect((record["source"] as? [String: Any])?["namespace"] as? String == "a")
        #expect((record["destination"] as? [String: Any])?["workload"] as? String == "back")
        #expect((record["request"] as? [String: Any])?["path"] as? String == "/reviews/1", "the outbound half's request")
    }

    @Test func retriesAreAttemptsOfOneRecordConfirmedByTheConnection() throws {
        let pairer = Self.pairer()
        // Two inbound attempts on different connections; the outbound half saw the second one.
        _ = pairer.add(makeBatch([Self.half("r1", .inbound, from: "10.0.0.1:1111")]), now: 0)
        _ = pairer.add(makeBatch([Self.half("r1", .inbound, from: "10.0.0.1:2222")]), now: 0)
        let out = makeBatch([Self.half("r1", .outbound, from: "10.0.0.1:2222")])
        let record = try #require(Self.records(pairer.add(out, now: 0)).first)
        #expect((record["attempts"] as? [Any])?.count == 1)
        #expect(record["paired"] as? Bool == true)
    }

    @Test func anUnconfirmedInboundWaitsForItsConnection() {
        let pairer = Self.pairer()
        _ = pairer.add(makeBatch([Self.half("r1", .inbound, from: "10.0.0.9:1")]), now: 0)
        #expect(pairer.add(makeBatch([Self.half("r1", .outbound, from: "10.0.0.1:2")]), now: 0) == nil,
                "a different connection: not this request's twin yet")
        let expired = Self.records(pairer.expire(now: Self.second))
        #expect(expired.count == 1, "one record: same request id on both sides")
        #expect(expired[0]["paired"] as? Bool == true)
    }

    @Test func aSecondOutboundWithTheSameIdPushesTheFirstOutAlone() {
        let pairer = Self.pairer()
        _ = pairer.add(makeBatch([Self.half("r1", .outbound)]), now: 0)
        let out = Self.records(pairer.add(makeBatch([Self.half("r1", .outbound)]), now: 0))
        #expect(out.count == 1 && out[0]["paired"] as? Bool == false)
    }

    @Test func halvesWithoutRequestIdOrDirectionComeOutAloneAtOnce() {
        let pairer = Self.pairer()
        var unknown = Self.half("r1", .unknown)
        unknown.requestId = "x"
        let records = Self.records(pairer.add(makeBatch([Self.half("", .outbound), unknown]), now: 0))
        #expect(records.count == 2)
        #expect(records.allSatisfy { $0["paired"] as? Bool == false })
    }

    @Test func tcpEntriesAreNeverHeld() {
        let pairer = Self.pairer()
        var tcp = Self.half("r1", .outbound)
        tcp.isTCP = true
        #expect(pairer.add(makeBatch([tcp]), now: 0)?.entryCount == 1)
    }

    @Test func theWindowIsMeasuredFromTheFirstHalf() {
        let pairer = Self.pairer()
        _ = pairer.add(makeBatch([Self.half("r1", .outbound)]), now: 0)
        #expect(pairer.expire(now: Self.second - 1) == nil)
        #expect(Self.records(pairer.expire(now: Self.second)).count == 1)
        #expect(pairer.expire(now: 10 * Self.second) == nil, "emitted once")
    }

    @Test func expiringAllEmptiesTheTable() {
        let pairer = Self.pairer()
        _ = pairer.add(makeBatch((0..<5).map { Self.half("r\($0)", .outbound) }), now: 0)
        #expect(pairer.expire(now: 1, all: true)?.entryCount == 5)
        #expect(pairer.pinnedBytes == 0)
    }

    @Test func aFullTableLetsNewRequestsOutAloneAndCounts() {
        let counters = Counters()
        let pairer = Self.pairer(counters: counters, capacity: 3)
        let out = pairer.add(makeBatch((0..<5).map { Self.half("r\($0)", .outbound) }), now: 0)
        #expect(out?.entryCount == 2)
        #expect(counters.get(.pairTableFull) == 2)
        // The waiting ones still pair.
        #expect(Self.records(pairer.add(makeBatch([Self.half("r0", .inbound)]), now: 0)).first?["paired"] as? Bool == true)
    }

    @Test func recordsCarryBothHalvesFactsForFilters() throws {
        let pairer = Self.pairer()
        _ = pairer.add(makeBatch([Self.half("r1", .outbound)]), now: 0)
        let batch = try #require(pairer.add(makeBatch([Self.half("r1", .inbound)]), now: 0))
        let table = try #require(batch.facts)
        #expect(table.stride == 2)
        #expect(table.facts.map(\.direction) == [.outbound, .inbound])
        #expect(String(decoding: table.bytes(table.facts[1].destinationWorkload), as: UTF8.self) == "back")
        #expect(batch.text != nil)
    }

    @Test func theTextLineNamesBothSides() throws {
        let pairer = Self.pairer()
        _ = pairer.add(makeBatch([Self.half("r1", .outbound, path: "/x")]), now: 0)
        let batch = try #require(pairer.add(makeBatch([Self.half("r1", .inbound)]), now: 0))
        let line = String(decoding: try #require(batch.text).bytes.bytes, as: UTF8.self)
        #expect(line.hasPrefix("pair front.a → back.b GET /x 200"))
    }
}
