import Foundation

/// Turns the server's JSON lines into what `alstap tap -o text|wide` prints.
struct TapFormatter {
    enum Style: String, CaseIterable {
        case text, json, wide
    }

    let style: Style
    let color: Bool

    /// The line to print for one entry (nil: not an entry, e.g. a notice).
    func format(_ object: [String: Any]) -> String {
        let request = object["request"] as? [String: Any] ?? [:]
        let response = object["response"] as? [String: Any] ?? [:]
        let time = (object["time"] as? String).map(Self.clock) ?? "-"
        let direction = object["direction"] as? String ?? "unknown"
        let arrow = "\(label(object["source"], port: nil)) → \(label(object["destination"], port: true))"
        var line = "\(time) \(paint(Self.short(direction), direction == "inbound" ? "34" : direction == "outbound" ? "35" : "0"))"
        line += " \(arrow.padding(toLength: max(44, arrow.count), withPad: " ", startingAt: 0))"
        if object["type"] as? String == "tcp" {
            let connection = object["connection"] as? [String: Any] ?? [:]
            line += " \"TCP rx=\(connection["receivedBytes"] ?? 0) tx=\(connection["sentBytes"] ?? 0)\""
        } else {
            let scheme = request["scheme"] as? String ?? "-"
            let method = request["method"] as? String ?? "-"
            let path = request["path"] as? String ?? "-"
            let proto = object["protocol"] as? String ?? "-"
            line += " \"\(scheme) \(method) \(path) \(proto)\""
        }
        if let code = response["code"] as? Int {
            let colors = [2: "32", 3: "36", 4: "33", 5: "31"]
            line += " " + paint(String(code), colors[code / 100] ?? "0")
        } else {
            line += " -"
        }
        if let total = (object["durations"] as? [String: Any])?["total"] as? Double {
            line += " " + Self.latency(total)
        }
        if let flags = response["flags"] as? [String], !flags.isEmpty {
            line += " " + paint(flags.joined(separator: ","), "31")
        }
        if style == .wide {
            line += " id=\(request["id"] as? String ?? "-")"
            line += " ua=\"\(request["userAgent"] as? String ?? "-")\""
            line += " upstream=\((object["upstream"] as? [String: Any])?["host"] as? String ?? "-")"
            line += " reporter=\((object["reporter"] as? [String: Any])?["nodeId"] as? String ?? "-")"
        }
        return line
    }

    /// `workload.namespace`, `service.namespace:port` or the address.
    private func label(_ value: Any?, port: Bool?) -> String {
        guard let side = value as? [String: Any] else { return "-" }
        let namespace = side["namespace"] as? String
        if let workload = side["workload"] as? String {
            return namespace.map { "\(workload).\($0)" } ?? workload
        }
        if let service = side["service"] as? String {
            var label = namespace.map { "\(service).\($0)" } ?? service
            if port == true, let number = side["port"] as? Int { label += ":\(number)" }
            return label
        }
        return side["address"] as? String ?? "-"
    }

    private func paint(_ text: String, _ code: String) -> String {
        color && code != "0" ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    static func short(_ direction: String) -> String {
        switch direction {
        case "inbound": "in "
        case "outbound": "out"
        default: "?  "
        }
    }

    /// `2026-11-27T07:43:13.364237Z` → `07:43:13.364`.
    static func clock(_ time: String) -> String {
        guard let t = time.firstIndex(of: "T") else { return time }
        return String(time[time.index(after: t)...].prefix(12))
    }

    static func latency(_ milliseconds: Double) -> String {
        milliseconds >= 1000 ? String(format: "%.2fs", milliseconds / 1000) : String(format: "%.2fms", milliseconds)
    }
}
