import ALSTapALS
import ALSTapHTTP2
import Testing

@testable import ALSTapServer

/// Requests are routed without sockets: gRPC calls by path to an ingest method, the rest by `HTTPRoute`.
@Suite struct RoutingTests {
    final class Method: IngestMethod {
        let path: String
        let isStreaming = true
        init(_ path: String) { self.path = path }
        func makeCall() -> any IngestCall { Call() }
    }

    final class Call: IngestCall {
        var messages: [[UInt8]] = []
        func receive(message: UnsafeRawBufferPointer) throws(GRPCStatusError) { messages.append(Array(message)) }
        func finish() -> [UInt8] { [1, 2, 3] }
    }

    @Test func gRPCCallsGoToTheMethodTheirPathNames() {
        let als = Method("/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs")
        let otlp = Method("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
        let registry = IngestRegistry([als, otlp])
        #expect(registry.method(for: als.path) === als)
        #expect(registry.method(for: otlp.path) === otlp)
        #expect(registry.method(for: "/envoy.service.accesslog.v3.AccessLogService/Other") == nil)
        #expect(registry.method(for: "") == nil)
    }

    @Test func theResponseMessageIsFramedOnce() {
        let call = Call()
        let stream = GRPCIngestStream(call: call, isStreaming: true, maxMessageBytes: 1024)
        stream.prepareResponse(call.finish())
        #expect(stream.response.bytes == [0, 0, 0, 0, 3, 1, 2, 3])
    }

    @Test func aBodyIsSentInThePiecesAsked() {
        var body = BodyCursor(Array(0..<10))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4, alignment: 1)
        defer { buffer.deallocate() }
        var got: [UInt8] = []
        var ends: [Bool] = []
        for _ in 0..<3 {
            guard case .bytes(let count, let end) = body.read(into: buffer) else { break }
            got += buffer.prefix(count)
            ends.append(end)
        }
        #expect(got == Array(0..<10))
        #expect(ends == [false, false, true])
    }

    @Test func trailersOnlyCarryTheStatus() {
        let headers = GRPCIngestStream.trailersOnly(GRPCStatusError(.resourceExhausted, "too big"))
        #expect(headers.first { $0.0 == "grpc-status" }?.1 == "8")
        #expect(headers.first { $0.0 == "grpc-message" }?.1 == "too big")
        let encoded = GRPCIngestStream.trailersOnly(GRPCStatusError(.internal, "100% caf\u{E9}\n"))
        #expect(encoded.first { $0.0 == "grpc-message" }?.1 == "100%25 caf%C3%A9%0A", "percent-encoded as gRPC says")
    }

    @Test(arguments: [("/healthz", HTTPRoute.healthz), ("/readyz", .readyz), ("/stats", .stats), ("/metrics", .metrics),
                      ("/nope", .notFound)])
    func pathsRouteToTheirEndpoints(path: String, route: HTTPRoute) {
        #expect(HTTPRoute(method: "GET", target: path) == route)
    }

    @Test func onlyGetAndHeadAreServed() {
        #expect(HTTPRoute(method: "POST", target: "/tap") == .methodNotAllowed)
        #expect(HTTPRoute(method: "HEAD", target: "/healthz") == .healthz)
    }

    @Test func aBadTapQueryIsABadRequestThatNamesIt() {
        guard case .badRequest(let message) = HTTPRoute(method: "GET", target: "/tap?colour=blue") else {
            Issue.record("not a bad request")
            return
        }
        #expect(message.contains("colour"))
    }

    @Test func theTokenGuardsEverythingButProbesAndAssets() {
        let tap = HTTPRoute(method: "GET", target: "/tap")
        #expect(tap.isAuthorized(nil, token: nil))
        #expect(!tap.isAuthorized(nil, token: "s3cret"))
        #expect(!tap.isAuthorized("Bearer wrong", token: "s3cret"))
        #expect(tap.isAuthorized("Bearer s3cret", token: "s3cret"))
        #expect(HTTPRoute.healthz.isAuthorized(nil, token: "s3cret"))
        #expect(!HTTPRoute.metrics.isAuthorized(nil, token: "s3cret"))
    }

    @Test func constantTimeEqualsComparesWholeStrings() {
        #expect(constantTimeEquals("abc", "abc"))
        #expect(!constantTimeEquals("abc", "abd"))
        #expect(!constantTimeEquals("abc", "abcd"))
        #expect(!constantTimeEquals("", "a"))
    }
}
