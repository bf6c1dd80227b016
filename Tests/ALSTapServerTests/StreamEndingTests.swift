import ALSTapALS
import Testing

@testable import ALSTapServer

/// When alstap ends an ingest call itself (`--max-stream-age`, shutdown), without sockets: only
/// between messages, only streaming calls, late messages still taken for a while; and what
/// `/readyz` says.
@Suite struct StreamEndingTests {
    static let second: UInt64 = 1_000_000_000

    @Test func anAgeIsTheMaximumGiveOrTakeTenPercent() {
        let age = StreamAge(maxNanos: 100 * Self.second)
        #expect(age.deadline(openedAt: 5, unit: 0) == 5 + 90 * Self.second)
        #expect(age.deadline(openedAt: 5, unit: 0.5) == 5 + 100 * Self.second)
        #expect(age.deadline(openedAt: 5, unit: 0.999_999) <= 5 + 110 * Self.second)
        #expect(age.deadline(openedAt: 5, unit: 0.999_999) > 5 + 109 * Self.second)
        #expect(age.deadline(openedAt: 5, unit: 7) == 5 + 110 * Self.second, "out-of-range randomness is clamped")
        #expect(StreamAge(maxNanos: 0).deadline(openedAt: 5, unit: 0.5) == .max, "0: never")
    }

    static func stream(streaming: Bool = true) -> GRPCIngestStream {
        GRPCIngestStream(call: RoutingTests.Call(), isStreaming: streaming, maxMessageBytes: 1 << 20)
    }

    static func feed(_ stream: GRPCIngestStream, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { chunk in try stream.deframer.feed(chunk) { _ in } }
    }

    @Test func aCallEndsOnlyWhenAskedAndBetweenMessages() throws {
        let stream = Self.stream()
        #expect(stream.dueEnd(now: 1) == nil, "not asked")
        try Self.feed(stream, [0, 0, 0, 0, 3, 7])  // a message of 3 bytes, 1 of them here
        stream.endSoon(GRPCIngestStream.aged)
        #expect(stream.dueEnd(now: 2) == nil, "half a message: it waits")
        try Self.feed(stream, [8, 9])
        #expect(stream.dueEnd(now: 3) == GRPCIngestStream.aged)
        #expect(stream.answered && stream.takesLateMessages && stream.status == GRPCIngestStream.aged)
        #expect(stream.dueEnd(now: 4) == nil, "answered once")
    }

    /// Under load a DATA chunk ends inside the next message: the call ends after the message
    /// that completed in it, and the one begun is taken late.
    @Test func aCallEndsAfterAMessageThatCompletedEvenIfTheNextHasBegun() throws {
        let stream = Self.stream()
        stream.endSoon(GRPCIngestStream.aged)
        try Self.feed(stream, [0, 0, 0, 0, 1, 7, 0, 0])  // one whole message, the next begun
        #expect(stream.dueEnd(now: 1) == nil, "not between messages")
        #expect(stream.dueEnd(now: 1, passedBoundary: true) == GRPCIngestStream.aged)
        #expect(stream.takesLateMessages && stream.deframer.bufferedBytes == 0 && !stream.deframer.isAtMessageBoundary)
    }

    @Test func theFirstReasonWins() {
        let stream = Self.stream()
        stream.endSoon(GRPCIngestStream.aged)
        stream.endSoon(GRPCIngestStream.shuttingDown)
        #expect(stream.dueEnd(now: 0) == GRPCIngestStream.aged)
    }

    @Test func unaryCallsRunToTheirEnd() {
        let stream = Self.stream(streaming: false)
        stream.endSoon(GRPCIngestStream.shuttingDown)
        #expect(stream.dueEnd(now: 0) == nil)
        #expect(!stream.answered)
    }

    @Test func lateMessagesAreTakenForTenSecondsThenTheStreamIsReset() {
        let stream = Self.stream()
        #expect(!stream.lingers(now: .max), "not ended by alstap")
        stream.endSoon(GRPCIngestStream.aged)
        _ = stream.dueEnd(now: 100)
        #expect(!stream.lingers(now: 100 + GRPCIngestStream.lateMessagesNanos - 1))
        #expect(stream.lingers(now: 100 + GRPCIngestStream.lateMessagesNanos))
    }

    @Test func theStatusIsOneEnvoyReconnectsOn() {
        for status in [GRPCIngestStream.aged, GRPCIngestStream.shuttingDown] {
            #expect(status.code == .unavailable)
            let headers = Dictionary(uniqueKeysWithValues: GRPCIngestStream.trailersOnly(status))
            #expect(headers["grpc-status"] == "14")
        }
    }

    @Test func readinessFailsWhileDrainingOrOverTheMemoryBound() {
        #expect(Readiness.evaluate(draining: false, residentBytes: 100 << 20, maxBytes: 0).ready, "no bound")
        #expect(Readiness.evaluate(draining: false, residentBytes: 100 << 20, maxBytes: 200 << 20).ready)
        #expect(Readiness.evaluate(draining: false, residentBytes: nil, maxBytes: 1).ready, "unknown: not held against it")
        let over = Readiness.evaluate(draining: false, residentBytes: 300 << 20, maxBytes: 200 << 20)
        #expect(over == Readiness(ready: false, reason: "resident memory 300.0 MiB over --ready-max-memory 200.0 MiB"))
        #expect(over.response.status == 503 && over.response.body == "not ready: \(over.reason)\n")
        let draining = Readiness.evaluate(draining: true, residentBytes: 1, maxBytes: 0)
        #expect(draining == Readiness(ready: false, reason: "draining"))
        #expect(Readiness.evaluate(draining: false, residentBytes: 1, maxBytes: 0).response.status == 200)
    }
}
