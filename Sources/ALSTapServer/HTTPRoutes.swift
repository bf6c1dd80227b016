import ALSTapALS
import ALSTapFilter
import ALSTapHTTP1
import ALSTapMetrics

/// A streaming request: live entries (`/tap`) or live aggregates (`/top`).
enum StreamRequest: Equatable {
    case tap(TapQuery)
    case top(TopQuery)

    var format: OutputFormat {
        switch self {
        case .tap(let query): query.format
        case .top(let query): query.tap.format
        }
    }
}

/// What an HTTP request (HTTP/1.1 or HTTP/2, not gRPC) asks for.
enum HTTPRoute: Equatable {
    case stream(StreamRequest)
    case healthz
    case readyz
    case stats
    case metrics
    case asset(WebAsset)
    case notFound
    case methodNotAllowed
    case badRequest(String)

    init(method: String, target: String) {
        let parsed = RequestTarget(target)
        let asset = WebAsset(path: parsed.path)
        guard asset != nil || ["/tap", "/top", "/healthz", "/readyz", "/stats", "/metrics"].contains(parsed.path) else {
            self = .notFound
            return
        }
        guard method == "GET" || method == "HEAD" else {
            self = .methodNotAllowed
            return
        }
        if let asset {
            self = .asset(asset)
            return
        }
        switch parsed.path {
        case "/healthz": self = .healthz
        case "/readyz": self = .readyz
        case "/stats": self = .stats
        case "/metrics": self = .metrics
        case "/top": self = Self.stream { () throws(TapQuery.Error) in .top(try TopQuery(parsed.query)) }
        default: self = Self.stream { () throws(TapQuery.Error) in .tap(try TapQuery(parsed.query)) }
        }
    }

    private static func stream(_ parse: () throws(TapQuery.Error) -> StreamRequest) -> HTTPRoute {
        do {
            return .stream(try parse())
        } catch {
            return .badRequest(error.message + "\n")
        }
    }

    /// Health probes and the UI's static files stay open; everything else wants the token when
    /// one is configured.
    func isAuthorized(_ authorization: String?, token: String?) -> Bool {
        guard let token else { return true }
        switch self {
        case .healthz, .readyz, .asset: return true
        default: return constantTimeEquals(authorization ?? "", "Bearer " + token)
        }
    }

    /// The fixed response for every route but the streams: status, reason, content type, body.
    /// `readiness` is asked only by `/readyz` (it reads the process's memory).
    func fixedResponse(counters: Counters, readiness: @autoclosure () -> Readiness) -> HTTPResponse {
        switch self {
        case .stream: HTTPResponse(200, "OK", "")
        case .healthz: HTTPResponse(200, "OK", "ok\n")
        case .readyz: readiness().response
        case .stats: HTTPResponse(200, "OK", counters.snapshot())
        case .metrics: HTTPResponse(200, "OK", String(decoding: counters.prometheusText(), as: UTF8.self),
                                    contentType: "text/plain; version=0.0.4; charset=utf-8")
        case .asset(let asset): asset.response
        case .notFound: HTTPResponse(404, "Not Found", "not found; try /, /tap or /top\n")
        case .methodNotAllowed: HTTPResponse(405, "Method Not Allowed", "method not allowed\n")
        case .badRequest(let message): HTTPResponse(400, "Bad Request", message)
        }
    }
}

/// A complete response with a short body, for either HTTP version.
struct HTTPResponse {
    let status: Int
    let reason: String
    let body: String
    var contentType = "text/plain; charset=utf-8"
    var extraHeaders: [(String, String)] = []

    init(_ status: Int, _ reason: String, _ body: String, contentType: String = "text/plain; charset=utf-8",
         extraHeaders: [(String, String)] = []) {
        self.status = status
        self.reason = reason
        self.body = body
        self.contentType = contentType
        self.extraHeaders = extraHeaders
    }

    static let unauthorized = HTTPResponse(401, "Unauthorized", "a bearer token is required\n",
                                           extraHeaders: [("WWW-Authenticate", "Bearer")])
    /// Any HTTP request on the ingest listener.
    static let ingestOnly = HTTPResponse(404, "Not Found",
                                         "this is alstap's ingest port (Envoy's gRPC access logs only); /tap, the web UI "
                                             + "and /metrics are on the HTTP port (--http-listen)\n")
    static let clusterNeedsPeers = HTTPResponse(400, "Bad Request", "scope=cluster needs alstap serve --peers\n")
    static let tooManySubscribers = HTTPResponse(503, "Service Unavailable", "too many subscribers (--max-subscribers)\n")
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was right.
func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    var difference = x.count ^ y.count
    for i in 0..<max(x.count, y.count) {
        difference |= Int((i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0))
    }
    return difference == 0
}
