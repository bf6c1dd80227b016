import Foundation
import Testing

@testable import ALSTapALS

/// JSON lines written with only some top-level members (`jsonMembers`, while only masked
/// subscribers read JSON): exactly the full line's members of that set, byte for byte, with
/// their offsets; a mask projects them as it projects the full line.
extension FieldMaskTests {
    @Suite struct Reduced {
        static let messages = [try! DecodingTests.fixture("http.bin"), try! DecodingTests.fixture("tcp.bin"),
                               Wire.streamMessage(entries: [MaskLines.oddEntry])]

        static func lines(_ message: [UInt8], _ members: JSONMembers) -> (EncodedLines, [[UInt8]]) {
            var reporter = Reporter()
            let batch = message.withUnsafeBytes {
                try! ALSDecoder().decode($0, reporter: &reporter, formats: [.json, .memberIndex], jsonMembers: members,
                                         decodedAtNanos: 0)
            }
            let json = batch.json!
            return (json, (0..<batch.entryCount).map { Array(json.bytes.bytes[json.range($0..<($0 + 1))]) })
        }

        @Test func theSchemaAndTheMembersAgree() {
            #expect(JSONMember.allCases.map { "\($0)" } == FieldMask.schema.map(\.name))
        }

        @Test func eachMemberAloneAndSeveralTogether() throws {
            let sets: [[JSONMember]] = JSONMember.allCases.map { [$0] }
                + [[.logName], [.reporter], [.logName, .reporter], [.request, .response, .durations], [.traceId, .customTags]]
            for members in sets {
                let names = members.map { "\($0)" }.joined(separator: ",")
                let mask = try FieldMask(parsing: names)
                for message in Self.messages {
                    let (_, full) = Self.lines(message, .all)
                    let (json, reduced) = Self.lines(message, mask.topLevel)
                    #expect(json.kept == mask.topLevel)
                    for (fullLine, line) in zip(full, reduced) {
                        #expect(text(line) == text(try project(names, fullLine)), "\(names)")
                    }
                    // Every member written has its offset.
                    for (i, line) in reduced.enumerated() {
                        #expect(json.members!.members(ofLine: i).count == (try parsed(line)).count)
                    }
                }
            }
        }

        @Test func aMaskProjectsReducedLinesAsFullOnes() throws {
            for text in ["request.path,response.code", "reporter.labels.app,source.workload", "durations.total,traceId"] {
                let mask = try FieldMask(parsing: text)
                for message in Self.messages {
                    let (_, full) = Self.lines(message, .all)
                    let (json, reduced) = Self.lines(message, mask.topLevel)
                    for (i, line) in reduced.enumerated() {
                        let out = ByteWriter()
                        let offset = json.range(i..<(i + 1)).lowerBound
                        line.withUnsafeBytes { mask.project($0, members: json.members!.members(ofLine: i), lineOffset: offset, into: out) }
                        #expect(Array(out.bytes) == (try project(text, full[i])), "\(text)")
                    }
                }
            }
        }
    }
}
