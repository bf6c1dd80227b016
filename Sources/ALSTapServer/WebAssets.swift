/// The web UI: static files compiled into the binary (SwiftPM `embedInCode`), served at `/`.
///
/// They hold no data, so they are served without the bearer token; the page sends the token
/// with its `/tap` and `/top` requests.
enum WebAsset: Equatable {
    case index, script, topScript, exportScript, styles

    init?(path: String) {
        switch path {
        case "/", "/index.html": self = .index
        case "/ui/app.js": self = .script
        case "/ui/top.js": self = .topScript
        case "/ui/export.js": self = .exportScript
        case "/ui/app.css": self = .styles
        default: return nil
        }
    }

    var response: HTTPResponse {
        switch self {
        case .index: Self.indexResponse
        case .script: Self.scriptResponse
        case .topScript: Self.topScriptResponse
        case .exportScript: Self.exportScriptResponse
        case .styles: Self.stylesResponse
        }
    }

    /// The page loads nothing from elsewhere and runs no inline code; it may not be framed.
    private static let headers = [
        ("Content-Security-Policy",
         "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'"),
        ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-cache"),
    ]

    private static let indexResponse = asset(PackageResources.index_html, "text/html; charset=utf-8")
    private static let scriptResponse = asset(PackageResources.app_js, "text/javascript; charset=utf-8")
    private static let topScriptResponse = asset(PackageResources.top_js, "text/javascript; charset=utf-8")
    private static let exportScriptResponse = asset(PackageResources.export_js, "text/javascript; charset=utf-8")
    private static let stylesResponse = asset(PackageResources.app_css, "text/css; charset=utf-8")

    private static func asset(_ bytes: [UInt8], _ contentType: String) -> HTTPResponse {
        HTTPResponse(200, "OK", String(decoding: bytes, as: UTF8.self), contentType: contentType, extraHeaders: headers)
    }
}
