import ALSTapALS
import ALSTapFilter
import ALSTapHTTP1

/// What an HTTP request (HTTP/1.1 or HTTP/2, not gRPC) asks for.
enum HTTPRoute: Equatable {
    case tap(TapQuery)
    case healthz
    case readyz
    case stats
    case notFound
    case methodNotAllowed
    case badRequest(String)

    init(method: String, target: String) {
        let parsed = RequestTarget(target)
        switch parsed.path {
        case "/tap", "/healthz", "/readyz", "/stats":
            guard method == "GET" || method == "HEAD" else {
                self = .methodNotAllowed
                return
            }
        default:
            self = .notFound
            return
        }
        switch parsed.path {
        case "/healthz": self = .healthz
        case "/readyz": self = .readyz
        case "/stats": self = .stats
        default: self = Self.tap(parsed.query)
        }
    }

    private static func tap(_ query: [RequestTarget.QueryParameter]) -> HTTPRoute {
        do {
            return .tap(try TapQuery(query))
        } catch {
            return .badRequest(error.message + "\n")
        }
    }

    /// The fixed response for every route but `tap`: status, reason, body.
    func fixedResponse(counters: Counters, ready: Bool) -> (status: Int, reason: String, body: String) {
        switch self {
        case .tap: (200, "OK", "")
        case .healthz: (200, "OK", "ok\n")
        case .readyz: ready ? (200, "OK", "ready\n") : (503, "Service Unavailable", "not ready\n")
        case .stats: (200, "OK", counters.snapshot())
        case .notFound: (404, "Not Found", "not found; try /tap\n")
        case .methodNotAllowed: (405, "Method Not Allowed", "method not allowed\n")
        case .badRequest(let message): (400, "Bad Request", message)
        }
    }
}

extension OutputFormat {
    var contentType: String {
        switch self {
        case .json: "application/x-ndjson"
        case .text: "text/plain; charset=utf-8"
        }
    }
}
