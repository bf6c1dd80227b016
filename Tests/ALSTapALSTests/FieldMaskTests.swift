import Foundation
import Testing

@testable import ALSTapALS
import ALSTapFormats

/// Real lines to project: the decoding fixtures' entries (http.bin: one with nearly every field
/// and a minimal one; tcp.bin), an entry built here with what those lack (an OTLP record's trace
/// ids and body) and strings full of escapes, and a pair record of them.
enum MaskLines {
    static let (http, tcp, odd): (EncodedBatch, EncodedBatch, EncodedBatch) = {
        var reporter = Reporter()
        func decode(_ bytes: [UInt8]) -> EncodedBatch {
            bytes.withUnsafeBytes {
                try! ALSDecoder().decode($0, reporter: &reporter, formats: [.json], facts: .pairing, decodedAtNanos: 0)
            }
        }
        return (decode(try! DecodingTests.fixture("http.bin")), decode(try! DecodingTests.fixture("tcp.bin")),
                decode(Wire.streamMessage(entries: [oddEntry])))
    }()

    /// Strings no fixture has: quotes, backslashes before quotes, braces, commas, control
    /// characters, non-ASCII; a header name and tag keys with quotes and dots.
    static let oddPath = "/a\\\",{}[]:\"x\\"
    static let oddHeaderKey = "x-q\"k\\", oddHeaderValue = "v\\"
    static let oddTags = [("otel.trace_id", "0af7651916cd43dd8448eb211c80319c"), ("otel.span_id", "b7ad6b7169203331"),
                          ("otel.body", "GET / {\"a\":[1,\"]\"]} é\u{1}😀"), ("team.name", "x,y}"), ("q\"k", "\\\"")]

    static let oddEntry: [UInt8] = Wire.message { entry in
        entry.field(1, Wire.message { common in
            common.field(5, Wire.message { $0.varint(1 << 3); $0.varint(1_700_000_000) })  // start_time
            common.field(15, "outbound|80||a.b.svc.cluster.local")
            for (key, value) in oddTags { common.field(22, Wire.message { $0.field(1, key); $0.field(2, value) }) }
            common.field(23, Wire.message { $0.varint(1 << 3); $0.varint(2) })  // duration: 2 s
        })
        entry.field(3, Wire.message { request in
            request.field(9, "rid-1")
            request.field(5, oddPath)
            request.field(13, Wire.message { $0.field(1, oddHeaderKey); $0.field(2, oddHeaderValue) })
            request.field(13, Wire.message { $0.field(1, "x-u"); $0.field(2, "é\u{7F}😀\\") })
        })
        entry.field(4, Wire.message { $0.field(1, Wire.message { $0.varint(1 << 3); $0.varint(200) }) })
    }

    static func lines(_ batch: EncodedBatch) -> [[UInt8]] {
        let lines = batch.json!
        return (0..<batch.entryCount).map { Array(lines.bytes.bytes[lines.range($0..<($0 + 1))]) }
    }

    /// Every entry's line: http.bin's two, tcp.bin's, the odd one.
    static let entries: [[UInt8]] = lines(http) + lines(tcp) + lines(odd)

    /// The odd entry as outbound half, http.bin's first as the final inbound attempt and its
    /// second as an earlier one: every member a pair record can have.
    static let pair: [UInt8] = {
        let writer = PairRecordWriter()
        writer.write(outbound: EntryRef(batch: odd, index: 0),
                     inbound: [EntryRef(batch: http, index: 0), EntryRef(batch: http, index: 1)])
        return lines(writer.finish(decodedAtNanos: 0)!)[0]
    }()
}

func project(_ mask: String, _ line: [UInt8]) throws -> [UInt8] {
    let mask = try FieldMask(parsing: mask)
    let out = ByteWriter(capacity: 16)
    line.withUnsafeBytes { mask.project($0, into: out) }
    return Array(out.bytes)
}

func parsed(_ line: [UInt8]) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
}

/// A JSON value serialized with sorted keys, to compare values (NSDictionary's `isEqual` on
/// Linux tells `true` from itself).
func sorted(_ value: Any) throws -> String {
    text(Array(try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])))
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// A line's bytes as Swift writes them (raw literals keep the line's backslashes), with its newline.
func bytes(_ line: String) -> [UInt8] { Array((line + "\n").utf8) }

@Suite struct FieldMaskTests {
    static let http = MaskLines.entries[0], minimal = MaskLines.entries[1], odd = MaskLines.entries[3]

    @Test func keepsTheSelectedMembersInTheLinesOrder() throws {
        #expect(try project("durations.total,response.code,time,request.path", Self.http) == bytes(
            #"{"time":"2025-11-27T06:58:08.123456Z","type":"http","request":{"path":"/reviews/0?q=\"quoted\"\n"},"#
            + #""response":{"code":503},"durations":{"total":1000.008}}"#))
        #expect(try project("tls.peerCertificate.subject,route,source", Self.http) == bytes(
            #"{"time":"2025-11-27T06:58:08.123456Z","type":"http","source":{"address":"10.44.0.7:51234"},"#
            + #""route":"default","tls":{"peerCertificate":{"subject":"CN=productpage"}}}"#))
        // What the line lacks leaves nothing, not an empty object.
        #expect(try project("tls.version,response.code,request.method,time", Self.minimal) == bytes(#"{"type":"http"}"#))
        #expect(try project("type", Self.http) == bytes(#"{"time":"2025-11-27T06:58:08.123456Z","type":"http"}"#))
    }

    @Test func aParentCoversItsSubPaths() throws {
        let whole = try project("request", Self.http)
        #expect(try project("request,request.path", Self.http) == whole)
        #expect(try project("request.path,request.headers.x-b3-traceid,request", Self.http) == whole)
        #expect(try sorted(parsed(whole)["request"]!) == sorted(parsed(Self.http)["request"]!))
        #expect(try project("request.headers,request.headers.nope", Self.http)
            == project("request.headers", Self.http))
    }

    @Test func mapKeys() throws {
        #expect(try project("request.headers.x-b3-traceid,response.trailers.grpc-status,reporter.labels.app,"
                            + "filterState.upstream_peer,customTags.team,response.headers.nope", Self.http) == bytes(
            #"{"time":"2025-11-27T06:58:08.123456Z","type":"http","reporter":{"labels":{"app":"reviews"}},"#
            + #""request":{"headers":{"x-b3-traceid":"80f198ee56343ba864fe8b2a57d3eff7"}},"#
            + #""response":{"trailers":{"grpc-status":"14"}},"customTags":{"team":"books"},"#
            + #""filterState":{"upstream_peer":{"@type":"type.googleapis.com/google.protobuf.Struct"}}}"#))
        // Exactly, no prefix; header names in any case (Envoy logs them lowercased), other keys exactly.
        #expect(try project("request.headers.x-b3,reporter.labels.App", Self.http)
            == bytes(#"{"time":"2025-11-27T06:58:08.123456Z","type":"http"}"#))
        #expect(try project("request.headers.X-B3-TraceId", Self.http) == bytes(
            #"{"time":"2025-11-27T06:58:08.123456Z","type":"http","request":{"headers":{"x-b3-traceid":"80f198ee56343ba864fe8b2a57d3eff7"}}}"#))
    }

    /// Quotes, backslashes before quotes, braces, commas and brackets in strings, escaped
    /// control characters, non-ASCII; map keys with quotes, backslashes and dots.
    @Test func stringsWithEscapes() throws {
        let mask = #"request.path,request.headers.x-q"k\,customTags.team.name,customTags.q"k,body,traceId"#
        let out = try project(mask, Self.odd)
        #expect(out == bytes(#"{"time":"2023-11-14T22:13:20.000000Z","type":"http","#
            + #""request":{"path":"/a\\\",{}[]:\"x\\","headers":{"x-q\"k\\":"v\\"}},"#
            + #""traceId":"0af7651916cd43dd8448eb211c80319c","body":"GET / {\"a\":[1,\"]\"]} é\u0001😀","#
            + #""customTags":{"team.name":"x,y}","q\"k":"\\\""}}"#))
        let line = try parsed(out)
        let request = try #require(line["request"] as? [String: Any])
        #expect(request["path"] as? String == MaskLines.oddPath)
        #expect(request["headers"] as? [String: String] == [MaskLines.oddHeaderKey: MaskLines.oddHeaderValue])
        #expect(line["body"] as? String == MaskLines.oddTags[2].1)
        #expect(line["customTags"] as? [String: String] == ["team.name": "x,y}", "q\"k": "\\\""])
    }

    /// Hand-written lines: runs of backslashes, escaped keys, whitespace, every kind of value.
    @Test(arguments: [
        (#"{"time":"t","type":"http","a\\":"\\","request":{"x":"}\"{,","path":"\\\\\"a\\\\"},"z":[{"\"":"]"}]}"#,
         "request.path", #"{"time":"t","type":"http","request":{"path":"\\\\\"a\\\\"}}"#),
        (#"{"type":"http","request":{"p\u0061th":"\u00e9\ud83d\ude00","path":"\/"}}"#,
         "request.path", #"{"type":"http","request":{"path":"\/"}}"#),
        (" { \"type\" : \"http\" , \"request\" : { \"path\" : \"/x\" , \"port\" : 80 } , \"route\": null,"
            + " \"x\": true, \"y\": -1.5e3, \"z\": [ ] } \n",
         "request.port,route", #"{"type" : "http","request":{"port" : 80},"route": null}"#),
        (#"{"type":"http","request":[{"path":1}],"response":"code","durations":{"total":[1,{"a":null}]}}"#,
         "request.path,response.code,durations.total", #"{"type":"http","durations":{"total":[1,{"a":null}]}}"#),
        // Not a pair record: its members are of no mask.
        (#"{"type":"http","paired":true,"outbound":{"type":"http"},"attempts":[]}"#, "request", #"{"type":"http"}"#),
    ])
    func handWrittenLines(line: String, mask: String, expected: String) throws {
        #expect(text(try project(mask, Array(line.utf8))) == expected + "\n")
    }

    @Test func pairRecords() throws {
        let pair = MaskLines.pair
        #expect(try project("request.path,response.code", pair) == bytes(
            #"{"type":"pair","paired":true,"requestId":"rid-1","request":{"path":"/a\\\",{}[]:\"x\\"},"#
            + #""outbound":{"time":"2023-11-14T22:13:20.000000Z","type":"http","request":{"path":"/a\\\",{}[]:\"x\\"},"#
            + #""response":{"code":200}},"inbound":{"time":"2025-11-27T06:58:08.123456Z","type":"http","#
            + #""request":{"path":"/reviews/0?q=\"quoted\"\n"},"response":{"code":503}},"#
            + #""attempts":[{"type":"http","request":{"path":"/ratings/0"}}],"overheadMs":999.992}"#))
        #expect(try project("source.address,destination.service", pair) == bytes(
            #"{"type":"pair","paired":true,"requestId":"rid-1","#
            + #""outbound":{"time":"2023-11-14T22:13:20.000000Z","type":"http","destination":{"service":"a"}},"#
            + #""inbound":{"time":"2025-11-27T06:58:08.123456Z","type":"http","source":{"address":"10.44.0.7:51234"}},"#
            + #""attempts":[{"type":"http","destination":{"service":"ratings"}}],"overheadMs":999.992}"#))
        // The pair's own members are kept whatever the mask.
        #expect(try project("paired", pair) == project("type,requestId", pair))
    }

    @Test(arguments: [
        // A half keeping nothing is `{}`; what is not an object is copied.
        (#"{"type":"pair","attempts":[{"x":1},2,"s",[{}]],"inbound":{"x":{}}}"#,
         #"{"type":"pair","attempts":[{},2,"s",[{}]]}"#),
        // A pair inside a half is a line like any other: no recursion on what the data nests.
        (#"{"type":"pair","outbound":{"type":"pair","paired":true,"outbound":{"type":"http"}}}"#,
         #"{"type":"pair","outbound":{"type":"pair"}}"#),
        // `type` decides only as the record's own member.
        (#"{"time":"t","request":{"type":"pair","paired":1},"outbound":{}}"#, #"{"time":"t"}"#),
    ])
    func handWrittenPairRecords(line: String, expected: String) throws {
        #expect(text(try project("request.path", Array(line.utf8))) == expected + "\n")
    }

    @Test func canonical() throws {
        #expect(try FieldMask(parsing: "source,request").canonical == "request,source")
        #expect(try FieldMask(parsing: "source,request") == FieldMask(parsing: "request,source,request"))
        #expect(try FieldMask(parsing: "request.path,request,request.headers.x").canonical == "request")
        #expect(try FieldMask(parsing: " response.code , request.path").canonical == "request.path,response.code")
        #expect(try FieldMask(parsing: "customTags.a.b,customTags.a").canonical == "customTags.a,customTags.a.b",
                "a map key may hold dots: a.b is not under a")
        #expect(try FieldMask(parsing: "time,type,paired,requestId,overheadMs").canonical == "")
        #expect(try FieldMask(parsing: "type,request") == FieldMask(parsing: "request"))
        #expect(try FieldMask(parsing: "request") != FieldMask(parsing: "request.path"))
        let masks = try ["tls.sni,route", "route,tls.sni,tls.sni", "route,tls.sni,time"].map { try FieldMask(parsing: $0) }
        #expect(Set(masks).count == 1)
        #expect(try FieldMask(parsing: Array(repeating: "route", count: 64).joined(separator: ",")).canonical == "route")
    }

    @Test func errors() throws {
        func message(_ text: String) -> String? {
            do throws(FieldMask.Error) { _ = try FieldMask(parsing: text) } catch { return error.message }
            return nil
        }
        let empty = "fields is empty: name one or more fields, e.g. fields=request.path,response.code"
        #expect(message("") == empty)
        #expect(message("  ") == empty)
        for list in ["request,,response", "request,", ",request", "request, ,response"] {
            #expect(message(list) == "empty field (two commas in a row, or one at an end)", "\(list)")
        }
        for path in ["request..path", ".request", "request.", "request.headers."] {
            #expect(message(path) == "empty segment in field \"\(path)\"")
        }
        #expect(message("request.pth") == "unknown field \"request.pth\" (request has: id, method, scheme, authority, port, "
            + "path, originalPath, userAgent, referer, forwardedFor, headerBytes, bodyBytes, headers)")
        #expect(message("route,Request") == "unknown field \"Request\" (fields: "
            + FieldMask.schema.map(\.name).joined(separator: ", ") + ")")
        #expect(message("tls.peerCertificate.subjct")
            == "unknown field \"tls.peerCertificate.subjct\" (tls.peerCertificate has: subject, issuer, subjectAltNames)")
        #expect(message("request.path.x") == "unknown field \"request.path.x\" (request.path has no sub-fields)")
        #expect(message("outbound.request")?.hasPrefix("unknown field \"outbound.request\" (fields: time, type,") == true,
                "a pair's halves take the whole mask: they are no path")
        #expect(message(Array(repeating: "route", count: 65).joined(separator: ",")) == "65 fields: at most 64")
        let key = String(repeating: "k", count: 256 - "request.headers.".count)
        #expect(message("request.headers." + key) == nil)
        #expect(message("request.headers." + key + "k")
            == "field \"\(("request.headers." + key).prefix(40))…\" is longer than 256 bytes")
        #expect(throws: FieldMask.Error.self) { try FieldMask(parsing: "nope") }
    }
}
