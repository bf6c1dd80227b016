import Foundation
import PropertyBased
import Testing

@testable import ALSTapALS

/// The mask checked against a model on parsed lines, for every path of the schema table, random
/// sets of them, and bytes that are no line at all.
extension FieldMaskTests {
    @Suite struct Properties {
        /// Every path of `FieldMask.schema`, and for each map every key the test lines have.
        static let paths: [[String]] = {
            var keys: [String: Set<String>] = [:]
            func collect(_ object: [String: Any], _ prefix: [String], _ fields: [FieldMask.Field]) {
                for field in fields {
                    guard let value = object[field.name] else { continue }
                    let path = prefix + [field.name]
                    if field.isMap, let map = value as? [String: Any] {
                        keys[path.joined(separator: "."), default: []].formUnion(map.keys)
                    } else if let inner = value as? [String: Any] {
                        collect(inner, path, field.fields)
                    }
                }
            }
            for line in MaskLines.entries { collect(try! parsed(line), [], FieldMask.schema) }
            func walk(_ fields: [FieldMask.Field], _ prefix: [String]) -> [[String]] {
                fields.flatMap { field -> [[String]] in
                    let path = prefix + [field.name]
                    let keyPaths = (keys[path.joined(separator: ".")] ?? []).sorted().map { path + [$0] }
                    return [path] + keyPaths + walk(field.fields, path)
                }
            }
            return walk(FieldMask.schema, [])
        }()

        static let lines = MaskLines.entries + [MaskLines.pair]

        /// The model: `paths` of a parsed line, plus what is always kept.
        static func expected(_ line: [String: Any], _ paths: [[String]]) -> [String: Any] {
            guard line["type"] as? String == "pair" else { return expectedLine(line, paths) }
            var result = line.filter { ["type", "paired", "requestId", "overheadMs"].contains($0.key) }
            for path in paths { merge(&result, select(line, path[...])) }
            for half in ["outbound", "inbound"] {
                if let line = line[half] as? [String: Any] { result[half] = expectedLine(line, paths) }
            }
            if let attempts = line["attempts"] as? [[String: Any]] {
                result["attempts"] = attempts.map { expectedLine($0, paths) }
            }
            return result
        }

        static func expectedLine(_ line: [String: Any], _ paths: [[String]]) -> [String: Any] {
            var result = line.filter { $0.key == "type" || $0.key == "time" }
            for path in paths { merge(&result, select(line, path[...])) }
            return result
        }

        /// `{first: {second: value}}` for a path the object has.
        static func select(_ object: [String: Any], _ path: ArraySlice<String>) -> [String: Any] {
            guard let first = path.first, let value = object[first] else { return [:] }
            if path.count == 1 { return [first: value] }
            guard let inner = value as? [String: Any] else { return [:] }
            let selected = select(inner, path.dropFirst())
            return selected.isEmpty ? [:] : [first: selected]
        }

        static func merge(_ into: inout [String: Any], _ other: [String: Any]) {
            for (key, value) in other {
                if var mine = into[key] as? [String: Any], let theirs = value as? [String: Any] {
                    merge(&mine, theirs)
                    into[key] = mine
                } else {
                    into[key] = value
                }
            }
        }

        static func check(_ paths: [[String]], _ line: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws {
            let mask = paths.map { $0.joined(separator: ".") }.joined(separator: ",")
            let out = try project(mask, line)
            #expect(out.last == UInt8(ascii: "\n"), sourceLocation: sourceLocation)
            let model = expected(try parsed(line), paths)
            #expect(try sorted(parsed(out)) == sorted(model), "\(mask): \(text(out))", sourceLocation: sourceLocation)
        }

        /// Each path on each line: the field with the line's value if the line has it, else only
        /// type and time. Every path is present in some line, but those no fixture can have.
        @Test func everyPathOfTheTable() throws {
            var absent: [String] = []
            for path in Self.paths {
                for line in Self.lines { try Self.check([path], line) }
                if !Self.lines.contains(where: { !Self.select(try! parsed($0), path[...]).isEmpty }) {
                    absent.append(path.joined(separator: "."))
                }
            }
            // No fixture has peer metadata of a source, nor a local certificate's subject or issuer.
            #expect(absent == ["source.service", "tls.localCertificate.subject", "tls.localCertificate.issuer"])
            #expect(Self.paths.count > 100)
            #expect(Self.paths.contains(["request", "headers", MaskLines.oddHeaderKey]))
            #expect(Self.paths.contains(["customTags", "team.name"]))
        }

        @Test func randomSetsOfPaths() async {
            await propertyCheck(count: 300, input: Gen.int(in: 0...(Self.paths.count - 1)).array(of: 1...8),
                                Gen.int(in: 0...(Self.lines.count - 1))) { picks, line in
                try Self.check(picks.map { Self.paths[$0] }, Self.lines[line])
                let mask = picks.map { Self.paths[$0].joined(separator: ".") }
                #expect(try FieldMask(parsing: mask.joined(separator: ","))
                    == FieldMask(parsing: (mask.reversed() + mask.prefix(2)).joined(separator: ",")))
            }
        }

        static let topLevel = FieldMask.schema.map(\.name).joined(separator: ",")

        /// Every top-level field: the line, byte for byte.
        @Test func everyTopLevelFieldIsTheLine() throws {
            for line in Self.lines { #expect(try project(Self.topLevel, line) == line, "\(text(line))") }
        }

        /// Strings of the characters that need care, in a path, a header and a tag, encoded by the
        /// decoder: the line comes back whole, and a path picks its value out.
        @Test func randomStrings() async {
            let tricky: [Character] = ["\"", "\\", "{", "}", "[", "]", ",", ":", "a", "é", "😀", "\u{1}", "\u{7F}", "\n",
                                       "/"]
            let strings = Gen.int(in: 0...(tricky.count - 1)).array(of: 1...12).map { String($0.map { tricky[$0] }) }
            await propertyCheck(count: 200, input: strings, strings) { value, key in
                let entry = Wire.message { entry in
                    let tag = Wire.message { $0.field(1, "t" + key); $0.field(2, value) }
                    entry.field(1, Wire.message { $0.field(22, tag) })
                    entry.field(3, Wire.message { request in
                        request.field(5, value)
                        request.field(13, Wire.message { $0.field(1, "h" + key); $0.field(2, value + key) })
                    })
                }
                var reporter = Reporter()
                let batch = Wire.streamMessage(entries: [entry]).withUnsafeBytes {
                    try! ALSDecoder().decode($0, reporter: &reporter, formats: [.json], decodedAtNanos: 0)
                }
                let line = MaskLines.lines(batch)[0]
                #expect(try project(Self.topLevel, line) == line)
                let safeKey = !key.contains(",")  // a comma ends a path
                let mask = "request.path" + (safeKey ? ",request.headers.h\(key),customTags.t\(key)" : "")
                let out = try parsed(project(mask, line))
                let request = try #require(out["request"] as? [String: Any])
                #expect(request["path"] as? String == value)
                if safeKey {
                    #expect(request["headers"] as? [String: String] == ["h" + key: value + key])
                    #expect(out["customTags"] as? [String: String] == ["t" + key: value])
                }
            }
        }

        static let masks = try! ["request.path", "request,response.code", "tls.peerCertificate.subject,customTags.team",
                                 topLevel].map { try FieldMask(parsing: $0) }

        /// Never a crash, an overread or a hang; always a line, no longer than its input (or `{}`),
        /// that projects onto the mask as itself.
        static func projectsSafely(_ input: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> [[UInt8]] {
            masks.map { mask in
                let out = ByteWriter(capacity: 16), again = ByteWriter(capacity: 16)
                input.withUnsafeBytes { mask.project($0, into: out) }
                mask.project(out.bytes, into: again)
                let bytes = Array(out.bytes)
                #expect(bytes.last == UInt8(ascii: "\n"), sourceLocation: sourceLocation)
                #expect(bytes.count <= max(input.count + 1, 3), sourceLocation: sourceLocation)
                #expect(Array(again.bytes) == bytes, sourceLocation: sourceLocation)
                return bytes
            }
        }

        /// Every cut of every line before its closing brace is `{}`.
        @Test func truncatedLines() {
            for line in Self.lines {
                for cut in 0..<(line.count - 2) {
                    let outs = Self.projectsSafely(Array(line[..<cut]))
                    #expect(outs.allSatisfy { $0 == Array("{}\n".utf8) }, "cut at \(cut)")
                }
            }
        }

        @Test func randomBytes() async {
            let raw = Gen.uint8(in: 0...255).array(of: 0...200)
            await propertyCheck(count: 500, input: raw) { _ = Self.projectsSafely($0) }
            // JSON's own bytes, so the scan goes deep.
            let alphabet = Array(#"{}[]":,\ a1"{}""#.utf8) + [UInt8(ascii: "\n")]
            let json = Gen.int(in: 0...(alphabet.count - 1)).array(of: 0...200).map { $0.map { alphabet[$0] } }
            let prefixes = [#"{"type":"pair","request":"#, #"{"time":"t","request":{"path":"#,
                            #"{"type":"pair","attempts":["#, #"{"request":{"headers":{"#, ""].map { Array($0.utf8) }
            await propertyCheck(count: 1000, input: json, Gen.int(in: 0...(prefixes.count - 1))) { bytes, prefix in
                _ = Self.projectsSafely(prefixes[prefix] + bytes)
            }
            // Real lines with one byte changed.
            await propertyCheck(count: 500, input: Gen.int(in: 0...(Self.lines.count - 1)), Gen.int(in: 0...100_000),
                                Gen.uint8(in: 0...255)) { line, position, byte in
                var bytes = Self.lines[line]
                bytes[position % bytes.count] = byte
                _ = Self.projectsSafely(bytes)
            }
        }

        @Test func deepAndMalformedInput() throws {
            let deep = 100_000
            let arrays = #"{"type":"http","request":"# + String(repeating: "[", count: deep)
                + String(repeating: "]", count: deep) + "}"
            #expect(text(try project("request.path", Array(arrays.utf8))) == "{\"type\":\"http\"}\n")
            #expect(text(try project("request", Array(arrays.utf8))) == arrays + "\n")
            let objects = #"{"request":{"path":"# + String(repeating: #"{"a":"#, count: deep) + "1"
                + String(repeating: "}", count: deep + 2)
            #expect(text(try project("request.path", Array(objects.utf8))) == objects + "\n")
            let pairs = String(repeating: #"{"type":"pair","outbound":"#, count: 10_000) + "{}"
                + String(repeating: "}", count: 10_000)
            #expect(text(try project("request", Array(pairs.utf8))) == #"{"type":"pair","outbound":{"type":"pair"}}"# + "\n")
            for malformed in ["", " ", "{", "}", "[]", "null", #"{"type":"a\"}"#, #"{"type":"a"}x"#,
                              #"{"type":"a"}\#n{"type":"b"}\#n"#,
                              #"{"request":[}]}"#, #"{"request":[{]}}"#, #"{"type" "a"}"#, #"{"type":"a",}"#, #"{,}"#,
                              #"{"type":"a""b":1}"#, #"{"type":"pair","attempts":[1 2]}"#, #"{"a":1"#, "{\"a\":\"\\"] {
                let outs = Self.projectsSafely(Array(malformed.utf8))
                #expect(outs.allSatisfy { $0 == Array("{}\n".utf8) }, "\(malformed)")
            }
            #expect(text(try project("request", Array("{}".utf8))) == "{}\n")
            // Checked where the mask descends; copied whole, only for closed strings and brackets.
            #expect(text(try project("request.path", Array(#"{"request":{"path":}}"#.utf8))) == "{}\n")
            #expect(text(try project("request", Array(#"{"request":{"path":}}"#.utf8))) == #"{"request":{"path":}}"# + "\n")
        }
    }
}
