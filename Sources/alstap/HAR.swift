import ALSTapFormats
import FoundationEssentials

/// Any JSON value, read from a tap line (the README's schema is the contract, not a struct).
enum JSONValue: Decodable, Equatable {
    case string(String), number(Double), bool(Bool), object([String: JSONValue]), array([JSONValue]), null

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    subscript(_ key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    var string: String? { if case .string(let value) = self { value } else { nil } }
    var number: Double? { if case .number(let value) = self { value } else { nil } }
    var object: [String: JSONValue]? { if case .object(let value) = self { value } else { nil } }
}

/// HAR 1.2 (`alstap tap -o har`): one entry per HTTP entry, or per pair with `--pair` (the
/// source sidecar's half, the destination's timings in `_alstap`). The mapping is the README's
/// ("HAR"); the web UI's "Download HAR" (export.js) follows the same table, and the end-to-end
/// tests check the two agree.
struct HARWriter {
    struct NameValue: Encodable { let name: String; let value: String }
    struct Content: Encodable { let size: Int; let mimeType: String }
    struct Request: Encodable {
        let method: String, url: String, httpVersion: String
        let cookies: [NameValue], headers: [NameValue], queryString: [NameValue]
        let headersSize: Int, bodySize: Int
    }
    struct Response: Encodable {
        let status: Int, statusText: String, httpVersion: String
        let cookies: [NameValue], headers: [NameValue], content: Content, redirectURL: String
        let headersSize: Int, bodySize: Int
    }
    struct Timings: Encodable { let blocked: Double, dns: Double, connect: Double, ssl: Double, send: Double, wait: Double, receive: Double }
    struct Alstap: Encodable {
        let direction: String?, requestId: String?, flags: [String]?, reporter: String?, source: String?
        let destination: String?, upstreamCluster: String?, responseCodeDetails: String?
        let paired: Bool?, overheadMs: Double?, inboundMs: Double?
    }
    struct Entry: Encodable {
        let startedDateTime: String, time: Double, request: Request, response: Response
        let cache: [String: String], timings: Timings, serverIPAddress: String?, connection: String?
        let _alstap: Alstap
    }

    static let head = #"{"log":{"version":"1.2","creator":{"name":"alstap","version":"\#(CaptureFile.alstapVersion)"},"pages":[],"entries":["#
    static let tail = "\n]}}\n"
    private var count = 0
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// The HAR text for one tap line (after a comma from the second on); nil for a line that is
    /// no HTTP entry (TCP, notices).
    mutating func entry(_ line: JSONValue) -> String? {
        guard let entry = Self.map(line), let data = try? encoder.encode(entry) else { return nil }
        defer { count += 1 }
        return (count == 0 ? "\n" : ",\n") + String(decoding: data, as: UTF8.self)
    }

    static func map(_ line: JSONValue) -> Entry? {
        var pairInfo: (paired: Bool?, overhead: Double?, inbound: Double?) = (nil, nil, nil)
        var entry = line
        if line["type"]?.string == "pair" {
            guard let half = line["outbound"] ?? line["inbound"] else { return nil }
            entry = half
            if case .bool(let paired)? = line["paired"] { pairInfo.paired = paired }
            pairInfo.overhead = line["overheadMs"]?.number
            pairInfo.inbound = line["inbound"]?["durations"]?["total"]?.number
        }
        guard entry["type"]?.string == "http", let request = entry["request"] else { return nil }
        let response = entry["response"]
        let version = entry["protocol"]?.string ?? "HTTP/1.1"
        let scheme = request["scheme"]?.string ?? "http"
        let authority = request["authority"]?.string ?? entry["destination"]?["host"]?.string ?? "unknown"
        let path = request["path"]?.string ?? "/"
        let requestHeaders = headers(request["headers"])
        let responseHeaders = headers(response?["headers"])
        let durations = entry["durations"]
        let total = durations?["total"]?.number ?? 0
        // Envoy's durations run from the request's first byte: until its last byte the client
        // was sending, until the first byte back it waited, the rest it received.
        let send = min(total, durations?["lastRxByte"]?.number ?? 0)
        let firstByte = durations?["firstDownstreamTxByte"]?.number ?? durations?["firstUpstreamRxByte"]?.number ?? send
        let wait = max(0, min(total, firstByte) - send)
        let receive = max(0, total - send - wait)
        let flags: [String]? = if case .array(let values)? = response?["flags"] { values.compactMap(\.string) } else { nil }
        let reporter = entry["reporter"]
        let side = { (value: JSONValue?) -> String? in
            guard let value else { return nil }
            if let workload = value["workload"]?.string { return workload + (value["namespace"]?.string.map { "." + $0 } ?? "") }
            return value["service"]?.string ?? value["address"]?.string
        }
        let upstream = entry["upstream"]?["host"]?.string ?? entry["destination"]?["address"]?.string
        return Entry(
            startedDateTime: entry["time"]?.string ?? "1970-01-01T00:00:00Z", time: total,
            request: Request(method: request["method"]?.string ?? "GET", url: "\(scheme)://\(authority)\(path)",
                             httpVersion: version, cookies: [], headers: requestHeaders, queryString: query(path),
                             headersSize: int(request["headerBytes"]), bodySize: int(request["bodyBytes"])),
            response: Response(status: max(0, int(response?["code"])), statusText: "", httpVersion: version, cookies: [],
                               headers: responseHeaders,
                               content: Content(size: max(0, int(response?["bodyBytes"])),
                                                mimeType: header("content-type", responseHeaders) ?? ""),
                               redirectURL: header("location", responseHeaders) ?? "",
                               headersSize: int(response?["headerBytes"]), bodySize: int(response?["bodyBytes"])),
            cache: [:], timings: Timings(blocked: -1, dns: -1, connect: -1, ssl: -1, send: send, wait: wait, receive: receive),
            serverIPAddress: upstream.map(hostOnly), connection: entry["source"]?["address"]?.string,
            _alstap: Alstap(direction: entry["direction"]?.string, requestId: request["id"]?.string, flags: flags,
                            reporter: reporter.flatMap(side) ?? reporter?["nodeId"]?.string,
                            source: side(entry["source"]), destination: side(entry["destination"]),
                            upstreamCluster: entry["upstream"]?["cluster"]?.string,
                            responseCodeDetails: response?["codeDetails"]?.string,
                            paired: pairInfo.paired, overheadMs: pairInfo.overhead, inboundMs: pairInfo.inbound))
    }

    /// A byte count, `-1` when absent or beyond 2^53 (where JSON numbers stop being exact, and
    /// where the web UI's mapping stops too).
    private static func int(_ value: JSONValue?) -> Int {
        guard let number = value?.number, abs(number) <= 9_007_199_254_740_991 else { return -1 }
        return Int(number)
    }

    private static func headers(_ value: JSONValue?) -> [NameValue] {
        (value?.object ?? [:]).compactMap { name, value in value.string.map { NameValue(name: name, value: $0) } }
            .sorted { $0.name < $1.name }
    }

    private static func header(_ name: String, _ headers: [NameValue]) -> String? {
        headers.first { $0.name.lowercased() == name }?.value
    }

    /// `a=1&b` of a path, as HAR's name/value pairs (as sent, not decoded).
    private static func query(_ path: String) -> [NameValue] {
        guard let mark = path.firstIndex(of: "?") else { return [] }
        return path[path.index(after: mark)...].split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return NameValue(name: String(parts[0]), value: parts.count > 1 ? String(parts[1]) : "")
        }
    }

    /// `10.0.0.2:9080` → `10.0.0.2`, `[::1]:80` → `::1`.
    private static func hostOnly(_ address: String) -> String {
        if address.hasPrefix("["), let end = address.firstIndex(of: "]") { return String(address[address.index(after: address.startIndex)..<end]) }
        return String(address.prefix { $0 != ":" })
    }
}
