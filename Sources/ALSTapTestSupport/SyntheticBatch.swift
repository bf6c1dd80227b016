import ALSTapALS

/// Synthetic `EncodedBatch`es with chosen facts, for unit tests of what runs above the decoder
/// (filters, the subscriber index, the pairer, the cluster merge) without protobuf or sockets.
/// A `TestEntry` is the facts of one entry written as plain values; `makeBatch` turns entries
/// into a batch shaped as the decoder's: JSON lines whose `jsonSections` point at their source,
/// destination and request objects, one text line per entry, and facts whose strings share one
/// pool. The lines are compact stand-ins, not the decoder's full schema.
public struct TestEntry: Sendable {
    public var direction: Direction = .outbound
    public var isTCP = false
    /// "" for none; otherwise a name `JSONLineEncoder.methodName` gives (GET, POST, ...).
    public var method = "GET"
    /// 0: none.
    public var code: UInt16 = 200
    /// ResponseFlags bits (bit N-1 for field N).
    public var flags: UInt32 = 0
    /// -1: none.
    public var durationMicros: Int64 = 1_000
    public var startMicros: Int64 = 0
    public var sourceNamespace = "", sourceWorkload = "", sourcePod = ""
    public var destinationNamespace = "", destinationWorkload = "", destinationPod = "", destinationService = ""
    public var reporterWorkload = "", reporterPod = ""
    public var path = "/", authority = "", scheme = "http", logName = ""
    public var requestId = ""
    public var linkFrom = "", linkTo = ""
    // Measures (live aggregates).
    public var reporterNamespace = "", routeName = "", sourceAddress = "", destinationAddress = ""
    public var bytesReceived: UInt64 = 0, bytesSent: UInt64 = 0
    // Details (header, user-agent, label and error filters).
    public var userAgent = ""
    public var headers: [(name: String, value: String)] = []
    public var reporterLabels: [(name: String, value: String)] = [], peerLabels: [(name: String, value: String)] = []
    /// -1: none.
    public var grpcStatus: Int32 = -1

    public init() {}

    /// The fields tests set most. `direction` has no default so that `TestEntry()` stays `init()`.
    public init(_ direction: Direction, isTCP: Bool = false, method: String = "GET", code: UInt16 = 200,
                sourceNamespace: String = "", sourceWorkload: String = "",
                destinationNamespace: String = "", destinationWorkload: String = "",
                path: String = "/", requestId: String = "") {
        self.direction = direction
        self.isTCP = isTCP
        self.method = method
        self.code = code
        self.sourceNamespace = sourceNamespace
        self.sourceWorkload = sourceWorkload
        self.destinationNamespace = destinationNamespace
        self.destinationWorkload = destinationWorkload
        self.path = path
        self.requestId = requestId
    }
}

/// A batch of `entries`, in `formats` (`.als` is never built: its lines would be protobuf).
///
/// JSON: `{"type":…,"requestId":…,"direction":…,"logName":…,"reporter":{…},"source":{…},
/// "destination":{…},"request":{…},"response":{…},"durations":{…}}`, absent strings left out
/// and no `request` for TCP. Text: `DIRECTION SOURCE → DESTINATION METHOD AUTHORITYPATH CODE
/// TOTALms`. The batch counts as TCP when every entry is.
public func makeBatch(_ entries: [TestEntry], sequence: UInt64 = 0, decodedAtNanos: UInt64 = 0,
                      formats: FormatSet = [.json, .text]) -> EncodedBatch {
    var pool: [UInt8] = []
    var pairs: [StringPair] = []
    var json = Lines()
    var text = Lines()
    var facts: [EntryFacts] = []
    for entry in entries {
        var f = entry.facts(storingIn: &pool, pairs: &pairs)
        if formats.contains(.json) { f.jsonSections = json.appendJSON(entry) }
        if formats.contains(.text) { text.appendText(entry) }
        facts.append(f)
    }
    let table = pool.withUnsafeBytes { EntryFactsTable(facts: facts, strings: SharedBytes(copying: $0), pairs: pairs) }
    var batch = EncodedBatch(entryCount: entries.count, isTCP: !entries.isEmpty && entries.allSatisfy(\.isTCP),
                             json: formats.contains(.json) ? json.encoded : nil,
                             text: formats.contains(.text) ? text.encoded : nil,
                             facts: table, decodedAtNanos: decodedAtNanos)
    batch.sequence = sequence
    return batch
}

extension TestEntry {
    fileprivate func facts(storingIn pool: inout [UInt8], pairs: inout [StringPair]) -> EntryFacts {
        func store(_ string: String) -> StringRef {
            guard !string.isEmpty else { return StringRef() }
            let ref = StringRef(offset: UInt32(pool.count), length: UInt32(string.utf8.count))
            pool += string.utf8
            return ref
        }
        var f = EntryFacts()
        f.isTCP = isTCP
        f.direction = direction
        f.method = methodRawValue
        f.code = code
        f.flags = flags
        f.durationMicros = durationMicros
        f.startMicros = startMicros
        (f.sourceNamespace, f.sourceWorkload, f.sourcePod) = (store(sourceNamespace), store(sourceWorkload), store(sourcePod))
        (f.destinationNamespace, f.destinationWorkload, f.destinationPod, f.destinationService) =
            (store(destinationNamespace), store(destinationWorkload), store(destinationPod), store(destinationService))
        (f.reporterWorkload, f.reporterPod) = (store(reporterWorkload), store(reporterPod))
        (f.path, f.authority, f.scheme, f.logName) = (store(path), store(authority), store(scheme), store(logName))
        f.requestId = store(requestId)
        (f.linkFrom, f.linkTo) = (store(linkFrom), store(linkTo))
        (f.reporterNamespace, f.routeName) = (store(reporterNamespace), store(routeName))
        (f.sourceAddress, f.destinationAddress) = (store(sourceAddress), store(destinationAddress))
        (f.bytesReceived, f.bytesSent) = (bytesReceived, bytesSent)
        func store(_ list: [(name: String, value: String)]) -> PairRange {
            let first = UInt32(pairs.count)
            for (name, value) in list { pairs.append(StringPair(name: store(name), value: store(value))) }
            return PairRange(first: first, count: UInt32(list.count))
        }
        f.userAgent = store(userAgent)
        (f.headers, f.reporterLabels, f.peerLabels) = (store(headers), store(reporterLabels), store(peerLabels))
        f.grpcStatus = grpcStatus
        return f
    }

    /// The `RequestMethod` raw value the decoder would have read.
    fileprivate var methodRawValue: UInt8 {
        guard !method.isEmpty else { return 0 }
        guard let raw = (1..<16).first(where: { JSONLineEncoder.methodName($0)?.description == method }) else {
            preconditionFailure("TestEntry: no RequestMethod named \"\(method)\"")
        }
        return UInt8(raw)
    }

    fileprivate var directionName: String {
        switch direction {
        case .unknown: "unknown"
        case .inbound: "inbound"
        case .outbound: "outbound"
        }
    }

    /// `workload.namespace` (the destination's workload, else its service), else "-".
    fileprivate func label(source: Bool) -> String {
        let workload = source ? sourceWorkload : (destinationWorkload.isEmpty ? destinationService : destinationWorkload)
        let namespace = source ? sourceNamespace : destinationNamespace
        if workload.isEmpty { return "-" }
        return namespace.isEmpty ? workload : workload + "." + namespace
    }
}

/// One format's lines as they are written.
private struct Lines {
    var bytes: [UInt8] = []
    var ends: [UInt32] = []

    var encoded: EncodedLines {
        bytes.withUnsafeBytes { EncodedLines(bytes: SharedBytes(copying: $0), lineEnds: ends) }
    }

    /// Writes the entry's JSON line; returns where its objects are, relative to the line start.
    mutating func appendJSON(_ e: TestEntry) -> JSONSections {
        let lineStart = bytes.count
        var sections = JSONSections()
        /// Writes `,"name":{…}` and returns the object's range in the line.
        func object(_ name: String, _ members: [(String, String)]) -> Range<UInt32> {
            append(",\"\(name)\":")
            let start = UInt32(bytes.count - lineStart)
            append("{")
            var first = true
            for (key, value) in members where !value.isEmpty {
                append(first ? "\"" : ",\"")
                append(key)
                append("\":")
                append(value)
                first = false
            }
            append("}")
            return start..<UInt32(bytes.count - lineStart)
        }
        append("{\"type\":")
        append(e.isTCP ? "\"tcp\"" : "\"http\"")
        if !e.requestId.isEmpty { append(",\"requestId\":" + quoted(e.requestId)) }
        append(",\"direction\":\"" + e.directionName + "\"")
        if !e.logName.isEmpty { append(",\"logName\":" + quoted(e.logName)) }
        _ = object("reporter", [("workload", quoted(e.reporterWorkload)), ("pod", quoted(e.reporterPod))])
        sections.source = object("source", [("workload", quoted(e.sourceWorkload)), ("namespace", quoted(e.sourceNamespace)),
                                             ("pod", quoted(e.sourcePod))])
        sections.destination = object("destination", [
            ("workload", quoted(e.destinationWorkload)), ("namespace", quoted(e.destinationNamespace)),
            ("pod", quoted(e.destinationPod)), ("service", quoted(e.destinationService)),
        ])
        if !e.isTCP {
            sections.request = object("request", [
                ("id", quoted(e.requestId)), ("method", quoted(e.method)), ("scheme", quoted(e.scheme)),
                ("authority", quoted(e.authority)), ("path", quoted(e.path)),
            ])
        }
        _ = object("response", [("code", e.code == 0 ? "" : String(e.code))])
        if e.durationMicros >= 0 { _ = object("durations", [("total", milliseconds(e.durationMicros))]) }
        append("}\n")
        ends.append(UInt32(bytes.count))
        return sections
    }

    mutating func appendText(_ e: TestEntry) {
        var line = e.directionName + " " + e.label(source: true) + " → " + e.label(source: false)
        if e.isTCP {
            line += " TCP"
        } else {
            line += " " + (e.method.isEmpty ? "-" : e.method) + " " + e.authority + e.path
            line += " " + (e.code == 0 ? "-" : String(e.code))
        }
        if e.durationMicros >= 0 { line += " " + milliseconds(e.durationMicros) + "ms" }
        // As the decoder's text lines: a control character cannot break the line.
        append(String(String.UnicodeScalarView(line.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 })))
        append("\n")
        ends.append(UInt32(bytes.count))
    }

    private mutating func append(_ string: String) {
        bytes += string.utf8
    }
}

/// A JSON string literal ("" for an empty string, which the objects leave out).
private func quoted(_ string: String) -> String {
    guard !string.isEmpty else { return "" }
    var out = "\""
    for scalar in string.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// µs as milliseconds with three decimals (`1000` → `1.000`).
private func milliseconds(_ micros: Int64) -> String {
    let fraction = String(micros % 1000)
    return String(micros / 1000) + "." + String(repeating: "0", count: 3 - fraction.count) + fraction
}
