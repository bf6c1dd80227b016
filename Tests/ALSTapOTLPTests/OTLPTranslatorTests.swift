import ALSTapALS
import ALSTapFilter
import ALSTapHTTP1
import ALSTapOTLP
import Foundation
import Testing

/// OTLP records become the ALS entries alstap already serves: every attribute of the shipped set
/// lands in its JSON field, the reporter comes from the resource, and what cannot be read is
/// rejected by record with a reason, never by crashing or guessing.
@Suite struct OTLPTranslatorTests {
    // Computed, not a stored global: the enum's tagged payload pointers in a global look leaked to LeakSanitizer.
    static var fullRecord: OTLPRecord { OTLPRecord(attributes: [
        ("http.request.method", .string("POST")), ("url.scheme", .string("https")),
        ("server.address", .string("reviews:9080")), ("url.path", .string("/reviews/1")), ("url.query", .string("a=b")),
        ("user_agent.original", .string("curl/8")), ("http.request.header.referer", .string("http://r/")),
        ("network.protocol.version", .string("HTTP/2")), ("http.request.body.size", .string("12")),
        ("http.response.status_code", .string("503")), ("http.response.body.size", .int(98)),
        ("envoy.request_id", .string("req-1")), ("envoy.forwarded_for", .string("10.9.9.9")),
        ("envoy.original_path", .string("/orig")), ("envoy.response_code_details", .string("upstream_reset")),
        ("envoy.response_flags", .string("UF,URX,UAEX,NOPE")),
        ("envoy.upstream_cluster", .string("outbound|9080||reviews.demo.svc.cluster.local")),
        ("envoy.upstream_host", .string("10.1.2.3:9080")), ("envoy.upstream_local_address", .string("[fd00::1]:4000")),
        ("envoy.upstream_transport_failure_reason", .string("-")),
        ("envoy.downstream_local_address", .string("10.0.0.1:15001")),
        ("envoy.downstream_remote_address", .string("10.0.0.1:5555")),
        ("envoy.downstream_direct_remote_address", .string("10.0.0.1:5556")),
        ("envoy.requested_server_name", .string("reviews.demo")), ("envoy.route_name", .string("default")),
        ("envoy.connection_termination_details", .string("-")), ("envoy.stream_id", .string("s-1")),
        ("envoy.upstream_request_attempt_count", .string("2")),
        ("envoy.request_header_bytes", .string("200")), ("envoy.response_header_bytes", .string("90")),
        ("envoy.duration_us", .string("2041")), ("envoy.last_rx_byte_us", .string("92")),
        ("envoy.first_upstream_tx_byte_us", .string("658")), ("envoy.first_upstream_rx_byte_us", .string("1790")),
        ("envoy.upstream_peer.workload", .string("reviews-v2")), ("envoy.upstream_peer.name", .string("reviews-v2-xyz")),
        ("http.request.header.x-demo", .string("e2e")), ("http.response.header.content-type", .string("text/plain")),
        ("team", .string("blue")), ("retries", .int(-3)), ("sampled", .bool(true)), ("nested", .array([.string("x")])),
    ], traceId: Array(0..<16), spanId: [0xca, 0xb8, 0xde, 0x7b, 0x8e, 0x76, 0x38, 0x0a]) }

    @Test func everyAttributeOfTheSetLandsInItsField() throws {
        let out = try Translated.of(OTLPBuilder.request([OTLPResource(attributes: OTLPBuilder.envoyResource,
                                                                      records: [Self.fullRecord])]))
        #expect(out.rejections == OTLPRejections())
        #expect(out.countMismatches == 0)
        let entry = try #require(out.entries.first)
        #expect(entry["type"] as? String == "http")
        #expect(entry["time"] as? String == "2026-12-01T18:38:32.057568Z")
        #expect(entry["direction"] as? String == "outbound")
        #expect(entry["protocol"] as? String == "HTTP/2")
        #expect(entry["route"] as? String == "default")
        #expect(entry["streamId"] as? String == "s-1")
        #expect(entry["downstreamDirectRemoteAddress"] as? String == "10.0.0.1:5556")
        #expect(entry["traceId"] as? String == "000102030405060708090a0b0c0d0e0f")
        #expect(entry["spanId"] as? String == "cab8de7b8e76380a")
        let request = try #require(entry["request"] as? [String: Any])
        #expect(request["method"] as? String == "POST")
        #expect(request["scheme"] as? String == "https")
        #expect(request["authority"] as? String == "reviews:9080")
        #expect(request["path"] as? String == "/reviews/1?a=b")
        #expect(request["originalPath"] as? String == "/orig")
        #expect(request["userAgent"] as? String == "curl/8")
        #expect(request["referer"] as? String == "http://r/")
        #expect(request["forwardedFor"] as? String == "10.9.9.9")
        #expect(request["id"] as? String == "req-1")
        #expect(request["bodyBytes"] as? Int == 12)
        #expect(request["headerBytes"] as? Int == 200)
        #expect(request["headers"] as? [String: String] == ["x-demo": "e2e"])
        let response = try #require(entry["response"] as? [String: Any])
        #expect(response["code"] as? Int == 503)
        #expect(response["codeDetails"] as? String == "upstream_reset")
        #expect(response["flags"] as? [String] == ["UF", "UAEX", "URX"])  // field order; the unknown code dropped
        #expect(response["bodyBytes"] as? Int == 98)
        #expect(response["headerBytes"] as? Int == 90)
        #expect(response["headers"] as? [String: String] == ["content-type": "text/plain"])
        let upstream = try #require(entry["upstream"] as? [String: Any])
        #expect(upstream["cluster"] as? String == "outbound|9080||reviews.demo.svc.cluster.local")
        #expect(upstream["host"] as? String == "10.1.2.3:9080")
        #expect(upstream["localAddress"] as? String == "[fd00::1]:4000")
        #expect(upstream["attemptCount"] as? Int == 2)
        #expect(upstream["transportFailureReason"] == nil)  // "-" is absent
        let durations = try #require(entry["durations"] as? [String: Double])
        #expect(durations == ["total": 2.041, "lastRxByte": 0.092, "firstUpstreamTxByte": 0.658, "firstUpstreamRxByte": 1.79])
        let destination = try #require(entry["destination"] as? [String: Any])
        #expect(destination["workload"] as? String == "reviews-v2")
        #expect(destination["pod"] as? String == "reviews-v2-xyz")
        #expect(destination["service"] as? String == "reviews")
        #expect(destination["namespace"] as? String == "demo")
        #expect(destination["address"] as? String == "10.1.2.3:9080")
        let source = try #require(entry["source"] as? [String: Any])
        #expect(source["address"] as? String == "10.0.0.1:5555")
        #expect(source["workload"] as? String == "productpage-v1")
        let reporter = try #require(entry["reporter"] as? [String: String])
        #expect(reporter == ["nodeId": "sidecar~10.0.0.1~productpage-v1-abc.demo~demo.svc.cluster.local",
                             "cluster": "productpage.demo", "workload": "productpage-v1", "namespace": "demo",
                             "pod": "productpage-v1-abc"])
        #expect(entry["logName"] as? String == "otlp")
        // Attributes alstap has no field for: scalars as custom tags; arrays are left out.
        #expect(entry["customTags"] as? [String: String] == ["team": "blue", "retries": "-3", "sampled": "true"])
    }

    @Test func istioDefaultTextLineIsRead() throws {
        let line = "[2026-12-01T18:38:48.920Z] \"GET /up/?x=1 HTTP/1.1\" 200 - via_upstream - \"-\" 0 1877 2 1 \"-\" "
            + "\"probe ua/2 (x; y)\" \"7b89\" \"127.0.0.1:18080\" \"127.0.0.1:18090\" "
            + "outbound|9080||reviews.demo.svc.cluster.local 127.0.0.1:33156 127.0.0.1:18080 127.0.0.1:35202 - up_route\n"
        let out = try Translated.of(OTLPBuilder.request([OTLPResource(attributes: OTLPBuilder.envoyResource, records: [
            OTLPRecord(time: 0, body: .string(line)),
        ])]))
        let entry = try #require(out.entries.first)
        #expect(entry["time"] as? String == "2026-12-01T18:38:48.920000Z")
        #expect(entry["body"] == nil)
        let request = try #require(entry["request"] as? [String: Any])
        #expect(request["method"] as? String == "GET")
        #expect(request["path"] as? String == "/up/?x=1")
        #expect(request["userAgent"] as? String == "probe ua/2 (x; y)")
        #expect(request["id"] as? String == "7b89")
        #expect(request["authority"] as? String == "127.0.0.1:18080")
        let response = try #require(entry["response"] as? [String: Any])
        #expect(response["code"] as? Int == 200)
        #expect(response["codeDetails"] as? String == "via_upstream")
        #expect(response["bodyBytes"] as? Int == 1877)
        #expect(response["flags"] == nil)
        #expect(entry["durations"] as? [String: Double] == ["total": 2])
        #expect(entry["route"] as? String == "up_route")
        #expect(entry["direction"] as? String == "outbound")
        #expect((entry["upstream"] as? [String: Any])?["host"] as? String == "127.0.0.1:18090")
        #expect((entry["source"] as? [String: Any])?["address"] as? String == "127.0.0.1:35202")
    }

    /// TCP records (Envoy's TCP listeners log no method, path or protocol) become TCP entries,
    /// each kind in a message of its own; a record with only a body stays an HTTP entry.
    @Test func tcpRecordsBecomeTCPEntries() throws {
        let tcpLine = "[2026-12-01T18:38:48.920Z] \"- - -\" 0 UF - - \"-\" 120 0 5 - \"-\" \"-\" \"-\" \"-\" "
            + "\"127.0.0.1:1\" outbound|9091||details.demo.svc.cluster.local - 127.0.0.1:10002 127.0.0.1:40000 - -"
        let out = try Translated.of(OTLPBuilder.request([OTLPResource(attributes: OTLPBuilder.envoyResource, records: [
            OTLPRecord(attributes: [("url.path", .string("/http"))]),
            OTLPRecord(body: .string(tcpLine)),
            OTLPRecord(attributes: [("http.request.method", .string("-")), ("envoy.upstream_cluster", .string("outbound|9091||details.demo.svc.cluster.local")),
                                    ("http.request.body.size", .string("7")), ("http.response.body.size", .string("9")),
                                    ("http.response.status_code", .string("0"))]),
            OTLPRecord(body: .string("an application's log line")),
        ])]))
        #expect(out.countMismatches == 0)
        #expect(out.messages.map { $0.map { $0["type"] as! String } } == [["http"], ["tcp", "tcp"], ["http"]])
        let text = out.messages[1][0], attributes = out.messages[1][1]
        #expect(text["connection"] as? [String: Int] == ["receivedBytes": 120, "sentBytes": 0])
        #expect((text["response"] as? [String: Any])?["flags"] as? [String] == ["UF"])
        #expect(text["direction"] as? String == "outbound")
        #expect((text["destination"] as? [String: Any])?["service"] as? String == "details")
        #expect(attributes["connection"] as? [String: Int] == ["receivedBytes": 7, "sentBytes": 9])
        #expect(attributes["request"] == nil)
        #expect(out.messages[2][0]["body"] as? String == "an application's log line")
    }

    @Test(arguments: ["GET / 200", "[not a time] \"GET / HTTP/1.1\" 200", "[2026-12-01T18:38:48.920Z] \"GET\" 200"])
    func anotherBodyIsKeptAsBody(body: String) throws {
        let out = try Translated.of(OTLPBuilder.request([OTLPResource(records: [OTLPRecord(body: .string(body))])]))
        #expect(out.rejections.count == 0)
        let entry = try #require(out.entries.first)
        #expect(entry["body"] as? String == body)
        #expect((entry["request"] as? [String: Any])?["method"] == nil)
    }

    @Test func aStructuredBodyReadsLikeAttributes() throws {
        let out = try Translated.of(OTLPBuilder.request([OTLPResource(records: [
            OTLPRecord(body: .kvlist([("http.request.method", .string("PUT")), ("http.response.status_code", .string("201"))])),
        ])]))
        let entry = try #require(out.entries.first)
        #expect((entry["request"] as? [String: Any])?["method"] as? String == "PUT")
        #expect((entry["response"] as? [String: Any])?["code"] as? Int == 201)
    }

    @Test func recordsThatCannotBeReadAreRejectedOneByOne() throws {
        let good = OTLPRecord(attributes: [("url.path", .string("/ok"))])
        let out = try Translated.of(OTLPBuilder.request([
            OTLPResource(records: [good, OTLPRecord(attributes: [("http.response.status_code", .string("abc"))]), good]),
            OTLPResource(records: [OTLPRecord(attributes: [("url.path", .int(3))]), OTLPRecord(), good,
                                   OTLPRecord(attributes: [("envoy.duration_us", .bool(true))]),
                                   OTLPRecord(attributes: [("envoy.duration_ms", .string("99999999999999999"))])]),
        ]))
        #expect(out.rejections.count == 5)
        #expect(out.rejections.errorMessage
            == "5 log records rejected; the first: record 2 of resource 1: http.response.status_code is not a number")
        #expect(out.entries.count == 3)
        #expect(out.entries.allSatisfy { ($0["request"] as? [String: Any])?["path"] as? String == "/ok" })
    }

    @Test func oneMessagePerReporterInRecordOrder() throws {
        func record(_ path: String, pod: String? = nil) -> OTLPRecord {
            OTLPRecord(attributes: [("url.path", .string(path))] + (pod.map { [("k8s.pod.name", OTLPValue.string($0))] } ?? []))
        }
        let out = try Translated.of(OTLPBuilder.request([
            OTLPResource(attributes: [("k8s.pod.name", .string("a"))], records: [record("/1"), record("/2"), record("/3", pod: "b")]),
            OTLPResource(attributes: [("k8s.pod.name", .string("b"))], records: [record("/4")]),
            OTLPResource(attributes: [("k8s.pod.name", .string("a"))], records: [record("/5")]),
        ]))
        // Istio's labels are record attributes: a record's own identity splits the message there.
        #expect(out.messages.map { $0.map { ($0["request"] as! [String: Any])["path"] as! String } }
            == [["/1", "/2"], ["/3", "/4"], ["/5"]])
        #expect(out.reporters.map(\.pod) == ["a", "b", "a"])
    }

    @Test func hostileBytesStayData() throws {
        let shown = "a\"b\\c\n{\"x\":1}\u{1B}[31m<script>alert(1)</script>"
        // A NUL ends a value (protobuf-c packs strings to their NUL: replays and relays would
        // show less than the live line otherwise).
        let hostile = shown + "\u{0}hidden"
        let out = try Translated.of(OTLPBuilder.request([OTLPResource(attributes: [("k8s.pod.name", .string(hostile))], records: [
            OTLPRecord(body: .string(hostile), attributes: [("url.path", .string(hostile)), (hostile, .string(hostile))]),
        ])]))
        #expect(out.messages.count == 1 && out.messages[0].count == 1)  // one entry, one line
        let entry = try #require(out.entries.first)
        #expect(entry["unparsable"] == nil)
        #expect((entry["request"] as? [String: Any])?["path"] as? String == shown)
        #expect(entry["body"] as? String == shown)
        #expect((entry["customTags"] as? [String: String])?[shown] == shown)
        #expect((entry["reporter"] as? [String: String])?["pod"] == shown)
    }

    @Test(arguments: [127, 128, 300, 16_383, 16_384, 70_000])
    func longValuesKeepTheirLength(length: Int) throws {
        let path = "/" + String(repeating: "p", count: length)
        let out = try Translated.of(OTLPBuilder.request([OTLPResource(records: [OTLPRecord(attributes: [("url.path", .string(path))])])]))
        #expect((out.entries.first?["request"] as? [String: Any])?["path"] as? String == path)
    }

    @Test func boundsFailTheWholeRequest() {
        var few = DecodeLimits()
        few.maxEntries = 3
        let four = OTLPBuilder.request([OTLPResource(records: Array(repeating: OTLPRecord(attributes: [("url.path", .string("/"))]), count: 2)),
                                        OTLPResource(records: Array(repeating: OTLPRecord(attributes: [("url.path", .string("/"))]), count: 2))])
        #expect(throws: GRPCStatusError(.resourceExhausted, "request has more than 3 log records", reason: .tooManyEntries)) {
            _ = try Translated.of(four, limits: few)
        }
        #expect(throws: Never.self) { _ = try Translated.of(four) }

        var deep = OTLPValue.string("x")
        for level in 0..<60 { deep = level % 2 == 0 ? .array([deep]) : .kvlist([("k", deep)]) }
        let nested = OTLPBuilder.request([OTLPResource(records: [OTLPRecord(attributes: [("x", deep)])])])
        #expect(throws: GRPCStatusError(.invalidArgument, "message nests deeper than 100 levels", reason: .tooDeep)) {
            _ = try Translated.of(nested)
        }
        let garbage: [UInt8] = [0x0A, 0x05, 0x0A, 0x7F]
        #expect(throws: GRPCStatusError(.invalidArgument, "ExportLogsServiceRequest does not decode (bad wire format)",
                                        reason: .invalidProtobuf)) {
            _ = try Translated.of(garbage)
        }
        var small = DecodeLimits()
        small.maxUnpackedBytes = 64 << 10
        let big = OTLPBuilder.request([OTLPResource(records: Array(repeating: OTLPRecord(attributes: [
            ("url.path", .string(String(repeating: "x", count: 1000)))]), count: 200))])
        #expect(throws: GRPCStatusError.self) { _ = try Translated.of(big, limits: small) }
        #expect(throws: Never.self) { _ = try Translated.of(big) }
    }

    @Test func attributeNamesAreFoundExactly() {
        for attribute in AccessAttribute.allCases {
            let name = Array(attribute.rawValue.utf8)
            #expect(name.withUnsafeBufferPointer { AccessAttribute.named($0) } == attribute)
            let longer = name + [UInt8(ascii: "x")]
            #expect(longer.withUnsafeBufferPointer { AccessAttribute.named($0) } == nil)
            let shorter = Array(name.dropLast())
            #expect(shorter.withUnsafeBufferPointer { AccessAttribute.named($0) } == nil)
        }
        #expect(Array("".utf8).withUnsafeBufferPointer { AccessAttribute.named($0) } == nil)
    }

    /// The shipped Envoy configuration sets every attribute of the set, each to its format string.
    @Test func shippedEnvoyConfigurationSetsTheWholeSet() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let config = try String(contentsOf: root.appendingPathComponent("deploy/envoy/envoy-otlp.yaml"), encoding: .utf8)
        for attribute in AccessAttribute.allCases {
            guard let format = attribute.envoyFormat else { continue }
            #expect(config.contains("{ key: \(attribute.rawValue), value: { string_value: \"\(format)\" } }"), "\(attribute)")
        }
    }

    /// `trace_id=` finds an OTLP record by the trace id its translation carries.
    @Test func traceIdFilterMatchesTheRecordsOfATrace() throws {
        let request = OTLPBuilder.request([OTLPResource(records: [
            OTLPRecord(attributes: [("url.path", .string("/a"))], traceId: Array(0..<16)),
            OTLPRecord(attributes: [("url.path", .string("/b"))], traceId: Array(repeating: 0xAB, count: 16)),
            OTLPRecord(attributes: [("url.path", .string("/c"))]),
        ])])
        let translator = OTLPTranslator()
        let decoder = ALSDecoder()
        var table: EntryFactsTable?
        _ = try request.withUnsafeBytes { payload throws(GRPCStatusError) in
            try translator.translate(payload) { message throws(GRPCStatusError) in
                var reporter = Reporter()
                table = try decoder.encode(built: message.message, reporter: &reporter, formats: [], facts: .filters,
                                           decodedAtNanos: 0).facts
            }
        }
        let facts = try #require(table)
        func matching(_ query: String) throws -> [Int] {
            let filter = try #require(try TapQuery(RequestTarget("/tap?" + query).query).filter)
            return facts.facts.indices.filter { filter.matches(facts.facts[$0], in: facts) }
        }
        #expect(try matching("trace_id=000102030405060708090a0b0c0d0e0f") == [0])
        #expect(try matching("trace_id=ABABABABABABABABABABABABABABABAB") == [1])  // any case
        #expect(try matching("trace_id=000102030405060708090a0b0c0d0e0f,abababababababababababababababab") == [0, 1])
        #expect(try matching("trace_id=00000000000000000000000000000000").isEmpty)
        for bad in ["abc", "000102030405060708090a0b0c0d0e0fff", "zz0102030405060708090a0b0c0d0e0f"] {
            let error = #expect(throws: TapQuery.Error.self) { _ = try TapQuery(RequestTarget("/tap?trace_id=" + bad).query) }
            #expect(error?.message == "bad value for trace_id: \"\(bad)\" (32 hexadecimal digits)")
        }
    }

    @Test func startTimesParse() {
        func nanos(_ text: String) -> UInt64? { Array(text.utf8).withUnsafeBufferPointer { TimeParsing.nanos(rfc3339: $0) } }
        #expect(nanos("1970-01-01T00:00:00Z") == 0)
        #expect(nanos("2026-12-01T18:38:48.920Z") == 1_796_150_328_920_000_000)
        #expect(nanos("2000-02-29T23:59:59.123456789Z") == 951_868_799_123_456_789)
        for bad in ["2026-12-01 18:38:48Z", "2026-13-01T00:00:00Z", "2026-12-01T18:38:48.Z", "2026-12-01T18:38:48.1234567890Z",
                    "2026-12-01T18:38:48", "x"] {
            #expect(nanos(bad) == nil, "\(bad)")
        }
    }
}
