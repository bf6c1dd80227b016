import Testing

@testable import ALSTapALS

@Suite struct GRPCDeframerTests {
    /// Three messages (one empty) framed back to back.
    static let messages: [[UInt8]] = [Array(0..<200).map { UInt8($0) }, [], Array(repeating: 0x5A, count: 1000)]
    static let body: [UInt8] = messages.flatMap { message in
        let length = UInt32(message.count)
        return [0, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + message
    }

    func deframe(_ chunks: [ArraySlice<UInt8>], max: Int = 4096) throws(GRPCStatusError) -> [[UInt8]] {
        var deframer = GRPCDeframer(maxMessageBytes: max)
        var out: [[UInt8]] = []
        for chunk in chunks {
            var failure: GRPCStatusError?
            chunk.withUnsafeBytes { bytes in
                do throws(GRPCStatusError) {
                    try deframer.feed(bytes) { out.append(Array($0)) }
                } catch {
                    failure = error
                }
            }
            if let failure { throw failure }
        }
        try deframer.finish()
        return out
    }

    @Test func splitAtEveryByteBoundary() throws {
        let body = Self.body
        for split in 0...body.count {
            #expect(try deframe([body[..<split], body[split...]]) == Self.messages, "split at \(split)")
        }
    }

    @Test func oneByteAtATime() throws {
        #expect(try deframe(Self.body.indices.map { Self.body[$0...$0] }) == Self.messages)
    }

    @Test func messageOverTheMaximumIsResourceExhausted() {
        #expect(throws: GRPCStatusError.self) { try deframe([Self.body[...]], max: 999) }
        do {
            _ = try deframe([Self.body[...]], max: 999)
        } catch {
            #expect(error.code == .resourceExhausted)
        }
    }

    @Test func compressedFlagIsUnimplemented() {
        do {
            _ = try deframe([[1, 0, 0, 0, 1, 7]])
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .unimplemented)
        }
    }

    @Test func bodyEndingInsideAMessageIsInternal() {
        for cut in [3, 5, 100] {
            do {
                _ = try deframe([Self.body[..<cut]])
                Issue.record("expected an error at \(cut)")
            } catch {
                #expect(error.code == .internal)
            }
        }
    }
}
