import Foundation
import PropertyBased
import Testing

@testable import ALSTapALS

/// The members' offsets the decoder records for masked subscribers (`FormatSet.memberIndex`):
/// the lines are unchanged, every top-level member has its offset, and projecting with them gives
/// the bytes the full scan gives, for every path of the schema.
extension FieldMaskTests {
    @Suite struct Index {
        /// The fixtures' and the odd entry's messages, decoded with and without the index.
        static let batches: [(plain: EncodedBatch, indexed: EncodedBatch)] = {
            func decode(_ bytes: [UInt8], _ formats: FormatSet) -> EncodedBatch {
                var reporter = Reporter()
                return bytes.withUnsafeBytes {
                    try! ALSDecoder().decode($0, reporter: &reporter, formats: formats, facts: .none, decodedAtNanos: 0)
                }
            }
            let messages = [try! DecodingTests.fixture("http.bin"), try! DecodingTests.fixture("tcp.bin"),
                            Wire.streamMessage(entries: [MaskLines.oddEntry])]
            return messages.map { (decode($0, .json), decode($0, [.json, .memberIndex])) }
        }()

        /// Each indexed line: its bytes, its members' offsets and its offset in the batch.
        static let lines: [(bytes: [UInt8], members: ArraySlice<UInt32>, offset: Int)] = batches.flatMap { _, batch in
            let json = batch.json!
            return (0..<batch.entryCount).map { i in
                let range = json.range(i..<(i + 1))
                return (Array(json.bytes.bytes[range]), json.members!.members(ofLine: i), range.lowerBound)
            }
        }

        @Test func linesAreUnchangedAndEveryMemberHasItsOffset() throws {
            for (plain, indexed) in Self.batches {
                #expect(Array(plain.json!.bytes.bytes) == Array(indexed.json!.bytes.bytes))
                #expect(plain.json!.members == nil)
            }
            for line in Self.lines {
                let object = try parsed(line.bytes)
                #expect(line.members.count == object.count, "\(text(line.bytes))")
                for offset in line.members {
                    let byte = line.bytes[Int(offset) - line.offset]
                    #expect(byte == UInt8(ascii: ",") || byte == UInt8(ascii: "\""))
                }
            }
        }

        static func indexed(_ mask: FieldMask, _ line: (bytes: [UInt8], members: ArraySlice<UInt32>, offset: Int)) -> [UInt8] {
            let out = ByteWriter()
            line.bytes.withUnsafeBytes { mask.project($0, members: line.members, lineOffset: line.offset, into: out) }
            return Array(out.bytes)
        }

        @Test func everyPathGivesTheScansBytes() throws {
            for path in Properties.paths {
                let mask = try FieldMask(parsing: path.joined(separator: "."))
                for line in Self.lines {
                    #expect(Self.indexed(mask, line) == (try project(path.joined(separator: "."), line.bytes)),
                            "\(path.joined(separator: ".")) on \(text(line.bytes))")
                }
            }
        }

        @Test func randomMasksGiveTheScansBytes() async {
            let paths = Properties.paths.map { $0.joined(separator: ".") }
            await propertyCheck(count: 300, input: Gen.int(in: 0...(paths.count - 1)).array(of: 1...6)) { picks in
                let text = picks.map { paths[$0] }.joined(separator: ",")
                let mask = try! FieldMask(parsing: text)
                for line in Self.lines {
                    #expect(Self.indexed(mask, line) == (try! project(text, line.bytes)), "\(text)")
                }
            }
        }

        /// Offsets that do not fit the line (a bug's, never the decoder's) give `{}`, never a read
        /// outside it.
        @Test func offsetsOutsideTheLineGiveAnEmptyObject() throws {
            let mask = try FieldMask(parsing: "request.path")
            let line = Self.lines[0]
            for members in [[UInt32(line.offset)], [UInt32(line.offset + line.bytes.count + 10)],
                            [UInt32(line.offset + 20), UInt32(line.offset + 10)]] {
                let out = ByteWriter()
                line.bytes.withUnsafeBytes { mask.project($0, members: members[...], lineOffset: line.offset, into: out) }
                #expect(text(Array(out.bytes)) == "{}\n")
            }
        }
    }
}
