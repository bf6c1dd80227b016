/// Turns the server's entries into what `alstap tap -o text|wide` prints. Every string from the
/// entry goes through `show` as it enters the line (`TerminalText.safe`), so the line's only
/// escapes are `paint`'s colors.
struct TapFormatter {
    enum Style: String, CaseIterable {
        case text, json, wide
    }

    let style: Style
    let color: Bool

    func format(_ entry: TapEntry) -> String {
        if entry.type == "pair" { return formatPair(entry) }
        let time = entry.time.map { Self.clock(show($0)) } ?? "-"
        let direction = entry.direction ?? "unknown"
        let arrow = "\(label(entry.source, withPort: false)) → \(label(entry.destination, withPort: true))"
        var line = "\(time) \(paint(Self.short(direction), direction == "inbound" ? "34" : direction == "outbound" ? "35" : "0"))"
        line += " " + arrow + String(repeating: " ", count: max(0, 44 - arrow.count))
        if entry.type == "tcp" {
            line += " \"TCP rx=\(entry.connection?.receivedBytes ?? 0) tx=\(entry.connection?.sentBytes ?? 0)\""
        } else {
            let request = entry.request
            line += " \"\(show(request?.scheme)) \(show(request?.method)) \(show(request?.path))"
                + " \(show(entry.protocol))\""
        }
        if let code = entry.response?.code {
            let colors = [2: "32", 3: "36", 4: "33", 5: "31"]
            line += " " + paint(String(code), colors[code / 100] ?? "0")
        } else {
            line += " -"
        }
        if let total = entry.durations?.total { line += " " + Self.latency(total) }
        if let flags = entry.response?.flags, !flags.isEmpty {
            line += " " + paint(flags.map(TerminalText.safe).joined(separator: ","), "31")
        }
        if style == .wide {
            line += " id=\(show(entry.request?.id))"
            line += " ua=\"\(show(entry.request?.userAgent))\""
            line += " upstream=\(show(entry.upstream?.host))"
            line += " reporter=\(show(entry.reporter?.nodeId))"
        }
        return line
    }

    /// A request seen by both sidecars: source → destination once, both latencies.
    private func formatPair(_ pair: TapEntry) -> String {
        let first = pair.outbound ?? pair.inbound
        let time = first?.time.map { Self.clock(show($0)) } ?? "-"
        let arrow = "\(label(pair.source, withPort: false)) → \(label(pair.destination, withPort: true))"
        var line = "\(time) \(pair.paired == true ? "pair" : "lone") " + arrow
            + String(repeating: " ", count: max(0, 44 - arrow.count))
        let request = pair.request
        line += " \"\(show(request?.scheme)) \(show(request?.method)) \(show(request?.path)) \(show(first?.protocol))\""
        if let code = (pair.outbound ?? pair.inbound)?.response?.code {
            let colors = [2: "32", 3: "36", 4: "33", 5: "31"]
            line += " " + paint(String(code), colors[code / 100] ?? "0")
        } else {
            line += " -"
        }
        if let total = pair.outbound?.durations?.total { line += " out=" + Self.latency(total) }
        if let total = pair.inbound?.durations?.total { line += " in=" + Self.latency(total) }
        if let overhead = pair.overheadMs { line += " overhead=" + Self.latency(overhead) }
        if let attempts = pair.attempts, !attempts.isEmpty { line += " attempts=\(attempts.count + 1)" }
        if let flags = (pair.outbound ?? pair.inbound)?.response?.flags, !flags.isEmpty {
            line += " " + paint(flags.map(TerminalText.safe).joined(separator: ","), "31")
        }
        if style == .wide { line += " id=\(show(pair.requestId))" }
        return line
    }

    /// `workload.namespace`, `service.namespace:port` or the address.
    private func label(_ side: TapEntry.Side?, withPort: Bool) -> String {
        guard let side else { return "-" }
        if let workload = side.workload.map(TerminalText.safe) {
            return side.namespace.map { "\(workload).\(show($0))" } ?? workload
        }
        if let service = side.service.map(TerminalText.safe) {
            var label = side.namespace.map { "\(service).\(show($0))" } ?? service
            if withPort, let port = side.port { label += ":\(port)" }
            return label
        }
        return show(side.address)
    }

    /// A string from the entry, terminal-safe; `-` when it is absent.
    private func show(_ text: String?) -> String {
        text.map(TerminalText.safe) ?? "-"
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

    /// `1.65ms`, `2.50s`: two decimals.
    static func latency(_ milliseconds: Double) -> String {
        let (value, unit) = milliseconds >= 1000 ? (milliseconds / 1000, "s") : (milliseconds, "ms")
        let hundredths = Int((value * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)\(unit)"
    }
}
