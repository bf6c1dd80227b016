import Foundation
import Testing

@testable import ALSTapALS
import CProtobufArena

/// A string laid out as protobuf-c leaves it in the decoder's arena: a size header, the bytes, a
/// NUL (the string functions read the header to know the length).
func arenaString<T>(_ text: String, _ body: (UnsafeMutablePointer<CChar>) -> T) -> T {
    let bytes = Array(text.utf8)
    let raw = UnsafeMutableRawPointer.allocate(byteCount: 8 + bytes.count + 1, alignment: 8)
    defer { raw.deallocate() }
    raw.storeBytes(of: CProtobufArenaHeader(size: UInt32(bytes.count + 1), magic: CPROTOBUFARENA_MAGIC),
                   as: CProtobufArenaHeader.self)
    let string = (raw + 8).bindMemory(to: CChar.self, capacity: bytes.count + 1)
    for (i, byte) in bytes.enumerated() { string[i] = CChar(bitPattern: byte) }
    string[bytes.count] = 0
    return body(string)
}

/// Fixtures serialized by Python's protobuf with Envoy's own protos (scripts/make-fixtures),
/// decoded by protobuf-c and encoded to JSON, then checked field by field.
@Suite struct DecodingTests {
    static func fixture(_ name: String) throws -> [UInt8] {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        return Array(try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func decode(_ name: String, reporter: inout Reporter) throws -> (json: [[String: Any]], text: [String]) {
        let bytes = try fixture(name)
        let decoder = ALSDecoder()
        let batch = try bytes.withUnsafeBytes {
            try decoder.decode($0, reporter: &reporter, formats: [.json, .text], facts: .pairing, decodedAtNanos: 0)
        }
        let jsonText = String(decoding: batch.json!.bytes.bytes, as: UTF8.self)
        let lines = jsonText.split(separator: "\n")
        #expect(lines.count == batch.entryCount)
        let json = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let text = String(decoding: batch.text!.bytes.bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        return (json, text)
    }

    @Test func httpEntryEveryField() throws {
        var reporter = Reporter()
        let (entries, text) = try Self.decode("http.bin", reporter: &reporter)
        #expect(entries.count == 2)
        let e = entries[0]
        #expect(e["time"] as? String == "2025-11-27T06:58:08.123456Z")
        #expect(e["type"] as? String == "http")
        #expect(e["logName"] as? String == "fixture_log")
        #expect(e["direction"] as? String == "inbound")
        let reporterJSON = e["reporter"] as! [String: Any]
        #expect(reporterJSON["nodeId"] as? String
            == "sidecar~10.44.0.12~reviews-v2-7d7f8c-x9z.bookinfo~bookinfo.svc.cluster.local")
        #expect(reporterJSON["cluster"] as? String == "reviews.bookinfo")
        #expect(reporterJSON["namespace"] as? String == "bookinfo")
        #expect(reporterJSON["workload"] as? String == "reviews-v2")
        #expect(reporterJSON["pod"] as? String == "reviews-v2-7d7f8c-x9z")
        #expect(reporterJSON["clusterId"] as? String == "east")
        #expect(reporterJSON["labels"] as? [String: String] == ["app": "reviews", "version": "v2"])

        let source = e["source"] as! [String: Any]
        #expect(source["address"] as? String == "10.44.0.7:51234")
        #expect(source["workload"] == nil, "the reporter is the destination of an inbound entry")
        let destination = e["destination"] as! [String: Any]
        #expect(destination["address"] as? String == "10.44.0.12:9080")
        #expect(destination["workload"] as? String == "reviews-v2")

        let request = e["request"] as! [String: Any]
        #expect(request["id"] as? String == "7f2a8c3e-1111-4222-8333-944445555666")
        #expect(request["method"] as? String == "PATCH")
        #expect(request["scheme"] as? String == "https")
        #expect(request["authority"] as? String == "reviews:9080")
        #expect(request["port"] as? Int == 9080)
        #expect(request["path"] as? String == "/reviews/0?q=\"quoted\"\n")
        #expect(request["originalPath"] as? String == "/api/reviews/0")
        #expect(request["userAgent"] as? String == "Mozilla/5.0 é世😀")
        #expect(request["referer"] as? String == "http://productpage/")
        #expect(request["forwardedFor"] as? String == "10.0.0.1")
        #expect(request["headerBytes"] as? Int == 321)
        #expect(request["bodyBytes"] as? Int == 42)
        #expect(request["headers"] as? [String: String] == ["x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7"])

        let response = e["response"] as! [String: Any]
        #expect(response["code"] as? Int == 503)
        #expect(response["codeDetails"] as? String == "upstream_reset_before_response_started{overflow}")
        #expect(response["flags"] as? [String] == ["UH", "UAEX", "URX", "DR"])
        #expect(response["headerBytes"] as? Int == 123)
        #expect(response["bodyBytes"] as? Int == 4567)
        #expect(response["headers"] as? [String: String] == ["content-type": "application/json"])
        #expect(response["trailers"] as? [String: String] == ["grpc-status": "14"])

        let upstream = e["upstream"] as! [String: Any]
        #expect(upstream["cluster"] as? String == "inbound|9080||")
        #expect(upstream["host"] as? String == "127.0.0.6:9080")
        #expect(upstream["localAddress"] as? String == "/var/run/upstream.sock")
        #expect(upstream["transportFailureReason"] as? String == "none")
        #expect(upstream["attemptCount"] as? Int == 2)

        let durations = e["durations"] as! [String: Double]
        #expect(durations == ["lastRxByte": 0.001, "firstUpstreamTxByte": 0.002, "lastUpstreamTxByte": 0.003,
                              "firstUpstreamRxByte": 4.5, "lastUpstreamRxByte": 5.0, "firstDownstreamTxByte": 6.0,
                              "lastDownstreamTxByte": 1000.007, "total": 1000.008])
        #expect(e["protocol"] as? String == "HTTP/2")
        #expect(e["route"] as? String == "default")
        #expect(e["downstreamDirectRemoteAddress"] as? String == "[fd00::7]:51234")
        #expect(e["downstreamTransportFailureReason"] as? String == "tls_error")
        #expect(e["connectionTerminationDetails"] as? String == "rbac_denied")
        #expect(e["streamId"] as? String == "stream-1")
        #expect(e["customTags"] as? [String: String] == ["team": "books"])
        #expect(e["filterState"] as? [String: [String: String]]
            == ["upstream_peer": ["@type": "type.googleapis.com/google.protobuf.Struct"]])

        let tls = e["tls"] as! [String: Any]
        #expect(tls["version"] as? String == "TLSv1.3")
        #expect(tls["cipherSuite"] as? Int == 0x1301)
        #expect(tls["sni"] as? String == "reviews.bookinfo")
        #expect(tls["sessionId"] as? String == "abcd")
        #expect(tls["ja3Fingerprint"] as? String == "ja3")
        let peer = tls["peerCertificate"] as! [String: Any]
        #expect(peer["subject"] as? String == "CN=productpage")
        #expect(peer["issuer"] as? String == "O=cluster.local")
        #expect(peer["subjectAltNames"] as? [String] == ["spiffe://cluster.local/ns/bookinfo/sa/productpage"])
        #expect((tls["localCertificate"] as? [String: Any])?["subjectAltNames"] as? [String] == ["reviews.bookinfo.svc"])

        // The minimal second entry: outbound, identity of the reporter on the source side,
        // nothing invented for what is absent.
        let minimal = entries[1]
        #expect(Set(minimal.keys) == ["type", "logName", "reporter", "direction", "source", "destination", "request",
                                      "upstream"])
        #expect(minimal["destination"] as? NSDictionary
            == ["service": "ratings", "namespace": "bookinfo", "host": "ratings.bookinfo.svc.cluster.local",
                "port": 9080, "subset": "v1"] as NSDictionary)
        #expect((minimal["source"] as? [String: String])?["workload"] == "reviews-v2")
        #expect(minimal["request"] as? NSDictionary == ["path": "/ratings/0", "headerBytes": 0, "bodyBytes": 0] as NSDictionary)

        #expect(text[0] == "2025-11-27T06:58:08.123456Z inbound 10.44.0.7:51234 → reviews-v2.bookinfo "
            + "PATCH reviews:9080/reviews/0?q=\"quoted\"? 503 1000.008ms UH,UAEX,URX,DR")
        #expect(text[1] == "- outbound reviews-v2.bookinfo → ratings.bookinfo:9080 - /ratings/0 -")
    }

    @Test func tcpEntry() throws {
        var reporter = Reporter()
        let (entries, text) = try Self.decode("tcp.bin", reporter: &reporter)
        #expect(entries.count == 1)
        let e = entries[0]
        #expect(e["type"] as? String == "tcp")
        #expect(e["direction"] as? String == "outbound")
        #expect(e["connection"] as? [String: Int] == ["receivedBytes": 1000, "sentBytes": 2000])
        #expect((e["response"] as? [String: [String]])?["flags"] == ["UH", "UAEX", "URX", "DR"])
        #expect((e["destination"] as? [String: Any])?["service"] as? String == "mysql")
        #expect(e["request"] == nil)
        #expect(e["reporter"] as? [String: String] == [:], "no Identifier: an empty reporter")
        #expect(text[0].contains(" TCP rx=1000 tx=2000 1000.008ms UH,UAEX,URX,DR"))
    }

    @Test func identifierIsKeptForLaterMessages() throws {
        var reporter = Reporter()
        _ = try Self.decode("http.bin", reporter: &reporter)
        let (entries, _) = try Self.decode("tcp.bin", reporter: &reporter)
        #expect((entries[0]["reporter"] as? [String: Any])?["workload"] as? String == "reviews-v2")
    }

    @Test func garbageIsInvalidArgument() {
        var reporter = Reporter()
        let decoder = ALSDecoder()
        do {
            _ = try [UInt8]([0xFF, 0xFF, 0xFF, 0xFF]).withUnsafeBytes {
                try decoder.decode($0, reporter: &reporter, formats: [.json], decodedAtNanos: 0)
            }
            Issue.record("expected an error")
        } catch {
            #expect((error as? GRPCStatusError)?.code == .invalidArgument)
        }
    }

    @Test(arguments: [
        ("outbound|9080|v2|reviews.bookinfo.svc.cluster.local", Direction.outbound, "reviews", "bookinfo", "9080", "v2")
            as (String, Direction, String?, String?, String?, String?),
        ("outbound|443||api.example.com", .outbound, nil, nil, "443", nil),
        ("inbound|9080||", .inbound, nil, nil, "9080", nil),
        ("InboundPassthroughCluster", .inbound, nil, nil, nil, nil),
        ("PassthroughCluster", .outbound, nil, nil, nil, nil),
        ("my_plain_cluster", .unknown, nil, nil, nil, nil),
        ("", .unknown, nil, nil, nil, nil),
    ])
    func clusterNames(name: String, direction: Direction, service: String?, namespace: String?, port: String?,
                      subset: String?) {
        arenaString(name) { pointer in
            let parsed = ClusterName(pointer)
            func text(_ bytes: UnsafeBufferPointer<UInt8>?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }
            #expect(parsed.direction == direction)
            #expect(text(parsed.service) == service)
            #expect(text(parsed.namespace) == namespace)
            #expect(text(parsed.port) == port)
            #expect(text(parsed.subset) == subset)
        }
    }
}
