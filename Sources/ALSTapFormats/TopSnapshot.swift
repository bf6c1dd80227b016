import ALSTapALS

/// Who one side of a `/top` row is: a workload, else a service, else an address (JSON schema's
/// identity objects, without the per-request parts such as pods and client ports).
public struct TopIdentity: Equatable, Hashable, Sendable {
    public enum Kind: UInt8, Sendable { case unknown, workload, service, address }
    public var kind: Kind
    /// The workload's, service's or address's bytes as Envoy sent them (escaped when written).
    public var name: [UInt8]
    public var namespace: [UInt8]

    public init(kind: Kind, name: [UInt8] = [], namespace: [UInt8] = []) {
        self.kind = kind
        self.name = name
        self.namespace = namespace
    }

    public static let unknown = TopIdentity(kind: .unknown)
}

/// Percentiles of one distribution, in ms.
public struct TopPercentiles: Equatable, Sendable {
    public var p50: Double, p90: Double, p99: Double, max: Double

    public init(p50: Double, p90: Double, p99: Double, max: Double) {
        (self.p50, self.p90, self.p99, self.max) = (p50, p90, p99, max)
    }
}

/// One group of a snapshot (or the totals, which have no labels).
public struct TopRow: Equatable, Sendable {
    /// The row that takes the entries of groups beyond the bound.
    public var other = false
    public var source: TopIdentity?
    public var destination: TopIdentity?
    public var reporter: TopIdentity?
    /// `by=route`: the method ("" for none), authority and route (Envoy's route name, else the folded path).
    public var method: String?
    public var authority: [UInt8]?
    public var route: [UInt8]?
    public var requests = 0
    public var errors = 0
    public var rps = 0.0
    public var bytesReceived: UInt64 = 0
    public var bytesSent: UInt64 = 0
    public var latencyMs: TopPercentiles?
    /// `pair=1`: outbound total minus inbound total of the paired requests.
    public var overheadMs: TopPercentiles?
    /// Response flag short code → entries with it, by code.
    public var flags: [(code: String, count: Int)] = []

    public init() {}

    public var successRate: Double { requests == 0 ? 1 : Double(requests - errors) / Double(requests) }

    public static func == (a: TopRow, b: TopRow) -> Bool {
        a.other == b.other && a.source == b.source && a.destination == b.destination && a.reporter == b.reporter
            && a.method == b.method && a.authority == b.authority && a.route == b.route && a.requests == b.requests
            && a.errors == b.errors && a.rps == b.rps && a.bytesReceived == b.bytesReceived && a.bytesSent == b.bytesSent
            && a.latencyMs == b.latencyMs && a.overheadMs == b.overheadMs
            && a.flags.map(\.code) == b.flags.map(\.code) && a.flags.map(\.count) == b.flags.map(\.count)
    }
}

/// One `/top` snapshot: the window's totals and its rows, most requests first.
public struct TopSnapshot: Equatable, Sendable {
    /// Wall-clock time of the snapshot, µs since the epoch.
    public var timeMicros: Int64
    public var by: String
    public var windowSeconds: Int
    /// Seconds of traffic the numbers cover: the window, or less while the aggregate is younger.
    public var coveredSeconds: Double
    public var totals: TopRow
    public var rows: [TopRow]
    /// Groups in the window (rows may be cut by `limit`).
    public var groups: Int
    /// Entries that went to the `other` row because the group bound was reached.
    public var overflowEntries: Int
    /// Entries this aggregate never saw (the hand-off to its loop was full).
    public var lostEntries: Int

    public init(timeMicros: Int64, by: String, windowSeconds: Int, coveredSeconds: Double, totals: TopRow,
                rows: [TopRow], groups: Int, overflowEntries: Int = 0, lostEntries: Int = 0) {
        self.timeMicros = timeMicros
        self.by = by
        self.windowSeconds = windowSeconds
        self.coveredSeconds = coveredSeconds
        self.totals = totals
        self.rows = rows
        self.groups = groups
        self.overflowEntries = overflowEntries
        self.lostEntries = lostEntries
    }

    /// The bytes a `/top` subscriber of `format` gets: one JSON line, a text table, or an SSE
    /// event `top` carrying the JSON.
    public func encoded(as format: OutputFormat) -> SharedBytes {
        let writer = ByteWriter(capacity: 1024 + rows.count * 320)
        switch format {
        case .text:
            writeText(writer)
        case .sse:
            writer.append("event: top\ndata: ")
            writeJSON(writer)
            writer.append("\n\n")
        case .json, .als, .capture:  // /top takes neither replica format
            writeJSON(writer)
            writer.append(UInt8(ascii: "\n"))
        }
        return writer.take()
    }

    // MARK: JSON

    func writeJSON(_ w: ByteWriter) {
        w.append("{\"type\":\"top\",\"time\":\"")
        w.appendTimestamp(seconds: timeMicros / 1_000_000, nanos: Int32(timeMicros % 1_000_000) * 1000)
        w.append("\",\"by\":")
        w.appendJSONText(by)
        w.append(",\"window\":")
        w.appendDecimal(UInt64(windowSeconds))
        w.append(",\"covered\":")
        w.appendFixed(coveredSeconds, decimals: 3)
        w.append(",\"groups\":")
        w.appendDecimal(UInt64(groups))
        if overflowEntries > 0 {
            w.append(",\"overflow\":")
            w.appendDecimal(UInt64(overflowEntries))
        }
        if lostEntries > 0 {
            w.append(",\"lost\":")
            w.appendDecimal(UInt64(lostEntries))
        }
        w.append(",\"totals\":")
        Self.writeJSON(totals, w)
        w.append(",\"rows\":[")
        for (i, row) in rows.enumerated() {
            if i > 0 { w.append(UInt8(ascii: ",")) }
            Self.writeJSON(row, w)
        }
        w.append("]}")
    }

    static func writeJSON(_ row: TopRow, _ w: ByteWriter) {
        w.append(UInt8(ascii: "{"))
        var comma = false
        func key(_ name: StaticString) {
            w.appendKey(name, comma: comma)
            comma = true
        }
        if row.other {
            key("other")
            w.append("true")
        }
        if let source = row.source { key("source"); writeJSON(source, w) }
        if let destination = row.destination { key("destination"); writeJSON(destination, w) }
        if let reporter = row.reporter { key("reporter"); writeJSON(reporter, w) }
        if let method = row.method { key("method"); w.appendJSONText(method) }
        if let authority = row.authority { key("authority"); w.appendJSONBytes(authority) }
        if let route = row.route { key("route"); w.appendJSONBytes(route) }
        key("requests"); w.appendDecimal(UInt64(row.requests))
        key("rps"); w.appendFixed(row.rps, decimals: 3)
        key("errors"); w.appendDecimal(UInt64(row.errors))
        key("successRate"); w.appendFixed(row.successRate, decimals: 4)
        if let latency = row.latencyMs { key("latencyMs"); writeJSON(latency, w, p90: true) }
        key("bytesReceived"); w.appendDecimal(row.bytesReceived)
        key("bytesSent"); w.appendDecimal(row.bytesSent)
        if !row.flags.isEmpty {
            key("flags")
            w.append(UInt8(ascii: "{"))
            for (i, flag) in row.flags.enumerated() {
                if i > 0 { w.append(UInt8(ascii: ",")) }
                w.appendJSONText(flag.code)
                w.append(UInt8(ascii: ":"))
                w.appendDecimal(UInt64(flag.count))
            }
            w.append(UInt8(ascii: "}"))
        }
        if let overhead = row.overheadMs { key("overheadMs"); writeJSON(overhead, w, p90: false) }
        w.append(UInt8(ascii: "}"))
    }

    static func writeJSON(_ p: TopPercentiles, _ w: ByteWriter, p90: Bool) {
        w.append("{\"p50\":")
        w.appendFixed(p.p50, decimals: 3)
        if p90 {
            w.append(",\"p90\":")
            w.appendFixed(p.p90, decimals: 3)
        }
        w.append(",\"p99\":")
        w.appendFixed(p.p99, decimals: 3)
        w.append(",\"max\":")
        w.appendFixed(p.max, decimals: 3)
        w.append(UInt8(ascii: "}"))
    }

    static func writeJSON(_ identity: TopIdentity, _ w: ByteWriter) {
        w.append(UInt8(ascii: "{"))
        switch identity.kind {
        case .unknown: break
        case .workload: w.append("\"workload\":"); w.appendJSONBytes(identity.name)
        case .service: w.append("\"service\":"); w.appendJSONBytes(identity.name)
        case .address: w.append("\"address\":"); w.appendJSONBytes(identity.name)
        }
        if !identity.namespace.isEmpty {
            w.append(",\"namespace\":")
            w.appendJSONBytes(identity.namespace)
        }
        w.append(UInt8(ascii: "}"))
    }

    // MARK: Text

    /// `# top by edge …` then a header and one line per row; data bytes are text-escaped.
    func writeText(_ w: ByteWriter) {
        w.append("# top by ")
        w.appendEscapedText(by)
        w.append(" at ")
        w.appendTimestamp(seconds: timeMicros / 1_000_000, nanos: Int32(timeMicros % 1_000_000) * 1000)
        w.append(", window ")
        w.appendDecimal(UInt64(windowSeconds))
        w.append("s (covered ")
        w.appendFixed(coveredSeconds, decimals: 1)
        w.append("s): ")
        w.appendDecimal(UInt64(totals.requests))
        w.append(" requests, ")
        w.appendFixed(totals.rps, decimals: 1)
        w.append(" rps, ")
        w.appendFixed(100 * totals.successRate, decimals: 2)
        w.append("% success, ")
        w.appendDecimal(UInt64(groups))
        w.append(" groups")
        if overflowEntries > 0 {
            w.append(", ")
            w.appendDecimal(UInt64(overflowEntries))
            w.append(" entries in other")
        }
        if lostEntries > 0 {
            w.append(", ")
            w.appendDecimal(UInt64(lostEntries))
            w.append(" lost")
        }
        w.append(UInt8(ascii: "\n"))
        w.append("REQUESTS\tRPS\tSUCCESS\tP50_MS\tP90_MS\tP99_MS\tMAX_MS\tGROUP\n")
        for row in rows {
            w.appendDecimal(UInt64(row.requests))
            w.append(UInt8(ascii: "\t"))
            w.appendFixed(row.rps, decimals: 1)
            w.append(UInt8(ascii: "\t"))
            w.appendFixed(100 * row.successRate, decimals: 2)
            w.append(UInt8(ascii: "%"))
            for value in row.latencyMs.map({ [$0.p50, $0.p90, $0.p99, $0.max] }) ?? [] {
                w.append(UInt8(ascii: "\t"))
                w.appendFixed(value, decimals: 3)
            }
            if row.latencyMs == nil { w.append("\t-\t-\t-\t-") }
            w.append(UInt8(ascii: "\t"))
            w.appendEscapedText(Self.label(row))
            w.append(UInt8(ascii: "\n"))
        }
    }

    /// `source → destination GET authority route`, as the row has them.
    public static func label(_ row: TopRow) -> String {
        if row.other { return "(other)" }
        var parts: [String] = []
        if let reporter = row.reporter { parts.append(label(reporter)) }
        switch (row.source, row.destination) {
        case let (source?, destination?): parts.append(label(source) + " → " + label(destination))
        case let (source?, nil): parts.append(label(source))
        case let (nil, destination?): parts.append(label(destination))
        default: break
        }
        if let method = row.method { parts.append(method.isEmpty ? "-" : method) }
        if let authority = row.authority { parts.append(String(decoding: authority, as: UTF8.self)) }
        if let route = row.route { parts.append(String(decoding: route, as: UTF8.self)) }
        return parts.joined(separator: " ")
    }

    /// `workload.namespace`, `service.namespace`, the address, or `-`.
    public static func label(_ identity: TopIdentity) -> String {
        let name = String(decoding: identity.name, as: UTF8.self)
        switch identity.kind {
        case .unknown: return "-"
        case .address: return name
        case .workload, .service:
            return identity.namespace.isEmpty ? name : name + "." + String(decoding: identity.namespace, as: UTF8.self)
        }
    }
}

extension ByteWriter {
    /// `value` with `decimals` digits after the point (rounded; negative and non-finite as 0).
    public func appendFixed(_ value: Double, decimals: Int) {
        var scale: UInt64 = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = value.isFinite && value > 0 ? min(value * Double(scale), 9e18).rounded() : 0
        let units = UInt64(scaled)
        appendDecimal(units / scale)
        if decimals > 0 {
            append(UInt8(ascii: "."))
            appendPadded(units % scale, width: decimals)
        }
    }

    func appendJSONBytes(_ bytes: [UInt8]) {
        append(UInt8(ascii: "\""))
        bytes.withUnsafeBufferPointer { appendEscaped($0, mode: .json) }
        append(UInt8(ascii: "\""))
    }

    func appendJSONText(_ text: String) { appendJSONBytes(Array(text.utf8)) }

    func appendEscapedText(_ text: String) {
        Array(text.utf8).withUnsafeBufferPointer { appendEscaped($0, mode: .text) }
    }
}
