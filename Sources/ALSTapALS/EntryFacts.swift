import CEnvoyProtos

/// A string stored in a batch's string pool; `length == 0` means absent.
public struct StringRef: Sendable {
    public var offset: UInt32 = 0
    public var length: UInt32 = 0

    public init(offset: UInt32 = 0, length: UInt32 = 0) {
        self.offset = offset
        self.length = length
    }
}

/// A range of an `EntryFactsTable`'s `pairs` (headers, labels); `count == 0`: none.
public struct PairRange: Sendable {
    public var first: UInt32 = 0
    public var count: UInt32 = 0

    public init(first: UInt32 = 0, count: UInt32 = 0) {
        self.first = first
        self.count = count
    }
}

/// A name and a value in a batch's string pool (a logged header, a label).
public struct StringPair: Sendable {
    public var name: StringRef
    public var value: StringRef

    public init(name: StringRef, value: StringRef) {
        self.name = name
        self.value = value
    }
}

/// What tap filters test, per entry, computed only when some subscriber filters.
/// Strings are references into the batch's pool, so a batch costs two allocations, not one per entry.
public struct EntryFacts: Sendable {
    public var isTCP = false
    public var direction = Direction.unknown
    /// `RequestMethod` raw value (0: none).
    public var method: UInt8 = 0
    /// HTTP status (0: none).
    public var code: UInt16 = 0
    /// Bit N-1 set for ResponseFlags field N.
    public var flags: UInt32 = 0
    /// Total duration in µs (-1: none).
    public var durationMicros: Int64 = -1
    /// Start time, µs since the epoch (0: none); orders a cluster tap's merged entries.
    public var startMicros: Int64 = 0
    public var sourceNamespace = StringRef(), sourceWorkload = StringRef(), sourcePod = StringRef()
    public var destinationNamespace = StringRef(), destinationWorkload = StringRef(), destinationPod = StringRef()
    public var destinationService = StringRef()
    public var reporterWorkload = StringRef(), reporterPod = StringRef()
    public var path = StringRef(), authority = StringRef(), scheme = StringRef(), logName = StringRef()
    /// x-request-id: the key that joins the two sidecars' entries of one request.
    public var requestId = StringRef()
    /// An OTLP record's trace id (the custom tag its translation carries it in), lowercase hex.
    public var traceId = StringRef()
    /// The connection between the sidecars, as both see it: outbound (upstream local, upstream
    /// remote) = inbound (downstream remote, downstream local).
    public var linkFrom = StringRef(), linkTo = StringRef()
    /// Where `"source"`, `"destination"` and `"request"` objects sit in the entry's JSON line.
    public var jsonSections = JSONSections()
    // Measures (`FactsNeed.measures`, for live aggregates):
    public var reporterNamespace = StringRef()
    /// The route name, when Envoy's route has one.
    public var routeName = StringRef()
    /// The client's IP (no port: client ports are ephemeral) and where the request went
    /// (`ip:port`): the identity of a side without workload or service (set only for such a side).
    public var sourceAddress = StringRef(), destinationAddress = StringRef()
    /// HTTP: request and response body bytes; TCP: the connection's received and sent bytes
    /// (`bytesSent` also for filters: `min_bytes`, `max_bytes`).
    public var bytesReceived: UInt64 = 0, bytesSent: UInt64 = 0
    // Details (`FactsNeed.details`, for the header, user-agent, label and error filters):
    public var userAgent = StringRef()
    /// The request and response headers Envoy logged (names as logged, redacted values as
    /// `[redacted]`).
    public var headers = PairRange()
    /// The reporter's labels (node metadata `LABELS`) and the peer's (Istio's peer metadata:
    /// `app`, `version` and its `labels`).
    public var reporterLabels = PairRange(), peerLabels = PairRange()
    /// `grpc-status` from the response trailers or headers Envoy logged; -1: none.
    public var grpcStatus: Int32 = -1

    public init() {}
}

/// Byte ranges of a JSON line's objects, relative to the start of the line (empty: absent).
public struct JSONSections: Sendable {
    public var source: Range<UInt32> = 0..<0
    public var destination: Range<UInt32> = 0..<0
    public var request: Range<UInt32> = 0..<0

    public init() {}
}

/// The facts of one batch and the pool their strings live in. Immutable once built.
public struct EntryFactsTable: Sendable {
    public let facts: [EntryFacts]
    public let strings: SharedBytes
    /// Headers and labels the facts' `PairRange`s point into (details only).
    public let pairs: [StringPair]
    /// Facts per record: 1, or 2 for paired records (a pair matches a filter if either half does).
    public let stride: Int
    /// Whether the details are there: a batch decoded before a filter that reads them was
    /// counted has none, and such a filter must not take its empty lists for facts.
    public let hasDetails: Bool

    public init(facts: [EntryFacts], strings: SharedBytes, pairs: [StringPair] = [], stride: Int = 1,
                hasDetails: Bool = true) {
        self.facts = facts
        self.strings = strings
        self.pairs = pairs
        self.stride = stride
        self.hasDetails = hasDetails
    }

    /// What the facts keep alive: their strings, headers and labels included.
    public var retainedBytes: Int {
        strings.count + facts.count * MemoryLayout<EntryFacts>.stride + pairs.count * MemoryLayout<StringPair>.stride
    }

    /// Whether `filter`-style needs can be tested on these facts.
    public func holds(_ need: FactsNeed) -> Bool { hasDetails || !need.contains(.details) }

    /// The bytes of `ref` (empty when absent).
    @inline(__always)
    public func bytes(_ ref: StringRef) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: strings.base + Int(ref.offset), count: Int(ref.length))
    }
}

/// Which per-entry facts a batch needs.
public struct FactsNeed: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let none: FactsNeed = []
    /// What tap filters test.
    public static let filters = FactsNeed(rawValue: 1)
    /// The connection between the sidecars (`linkFrom`, `linkTo`), for the pairer.
    public static let links = FactsNeed(rawValue: 2)
    /// Route, addresses and byte counts, for live aggregates (alone: without what only filters
    /// read, such as pods, scheme and request id).
    public static let measures = FactsNeed(rawValue: 4)
    /// Headers, user agent, labels and gRPC status, for the filters that test them (with `.filters`).
    public static let details = FactsNeed(rawValue: 8)
    public static let pairing: FactsNeed = [.filters, .links]
    public static let aggregates: FactsNeed = [.filters, .measures]
}

/// Builds `EntryFactsTable`s, reusing its buffers from batch to batch.
final class EntryFactsBuilder {
    private var facts: [EntryFacts] = []
    let pool = ByteWriter(capacity: 64 * 1024)
    /// Headers and labels (details only).
    var pairs: [StringPair] = []
    private let flagCodes: ResponseFlagCodes
    /// Lowercased names of headers whose values the facts hold as `[redacted]`, as the JSON shows them.
    let redactedHeaders: [[UInt8]]
    /// `--redact-header grpc-status`: the status is not a fact either.
    let grpcStatusRedacted: Bool
    private var withFilters = false
    private var withLinks = false
    private var withMeasures = false
    private var withDetails = false
    /// The reporter's strings, stored once per batch (every entry of a message has the same reporter).
    private var reporterNamespace = StringRef(), reporterWorkload = StringRef(), reporterPod = StringRef()
    private var logName = StringRef()
    private(set) var reporterLabelsOfBatch = PairRange()

    init(flagCodes: ResponseFlagCodes, redactedHeaders: [[UInt8]] = []) {
        self.flagCodes = flagCodes
        self.redactedHeaders = redactedHeaders
        grpcStatusRedacted = JSONLineEncoder.isRedacted(Array("grpc-status".utf8), redactedHeaders)
    }

    /// Starts a batch of entries from `reporter`.
    func reset(reporter: Reporter, need: FactsNeed) {
        facts.removeAll(keepingCapacity: true)
        pairs.removeAll(keepingCapacity: true)
        pool.removeAll()
        withFilters = need.contains(.filters)
        withLinks = need.contains(.links)
        withMeasures = need.contains(.measures)
        withDetails = need.contains(.details)
        reporterNamespace = store(reporter.namespaceBytes)
        reporterWorkload = store(reporter.workloadBytes)
        reporterPod = store(reporter.podBytes)
        logName = store(reporter.logNameBytes)
        reporterLabelsOfBatch = withDetails ? store(labels: reporter) : PairRange()
    }

    func finish() -> EntryFactsTable {
        EntryFactsTable(facts: facts, strings: SharedBytes(copying: pool.bytes), pairs: pairs, hasDetails: withDetails)
    }
    func add(http entry: UnsafePointer<CHTTPEntry>, view: EntryView, sections: JSONSections) {
        var facts = common(view)
        facts.jsonSections = sections
        if let request = entry.pointee.request?.pointee {
            facts.method = UInt8(truncatingIfNeeded: request.request_method.rawValue)
            facts.path = store(request.path)
            facts.authority = store(request.authority)
            if withFilters {
                facts.scheme = store(request.scheme)
                facts.requestId = store(request.request_id)
            }
        }
        if withFilters, let c = view.common?.pointee, c.n_custom_tags > 0 {
            for i in 0..<c.n_custom_tags {
                guard let tag = c.custom_tags[i], let key = tag.pointee.key, cStringEquals(key, "otel.trace_id") else { continue }
                facts.traceId = store(tag.pointee.value)
                break
            }
        }
        if withLinks, let c = view.common?.pointee {
            switch view.direction {
            case .outbound:
                facts.linkFrom = store(address: c.upstream_local_address)
                facts.linkTo = store(address: c.upstream_remote_address)
            case .inbound:
                facts.linkFrom = store(address: c.downstream_direct_remote_address ?? c.downstream_remote_address)
                facts.linkTo = store(address: c.downstream_local_address)
            case .unknown:
                break
            }
        }
        if let response = entry.pointee.response?.pointee {
            if let code = response.response_code { facts.code = UInt16(clamping: code.pointee.value) }
            facts.bytesSent = response.response_body_bytes
        }
        if withMeasures, let request = entry.pointee.request?.pointee { facts.bytesReceived = request.request_body_bytes }
        if withDetails { addDetails(http: entry, view: view, to: &facts) }
        self.facts.append(facts)
    }

    func add(tcp entry: UnsafePointer<CTCPEntry>, view: EntryView, sections: JSONSections) {
        var facts = common(view)
        facts.jsonSections = sections
        facts.isTCP = true
        if let connection = entry.pointee.connection_properties?.pointee {
            (facts.bytesReceived, facts.bytesSent) = (connection.received_bytes, connection.sent_bytes)
        }
        if withDetails { addDetails(view: view, to: &facts) }
        self.facts.append(facts)
    }

    private func common(_ view: EntryView) -> EntryFacts {
        var facts = EntryFacts()
        facts.direction = view.direction
        if let c = view.common?.pointee {
            if let flags = c.response_flags { facts.flags = flagCodes.mask(flags) }
            if let total = c.duration { facts.durationMicros = total.pointee.seconds * 1_000_000 + Int64(total.pointee.nanos) / 1000 }
            if let start = c.start_time { facts.startMicros = start.pointee.seconds * 1_000_000 + Int64(start.pointee.nanos) / 1000 }
        }
        (facts.reporterWorkload, facts.reporterPod, facts.logName) = (reporterWorkload, reporterPod, logName)
        let peer = (namespace: store(view.peer.namespace), workload: store(view.peer.workload),
                    pod: withFilters ? store(view.peer.pod) : StringRef(), service: store(view.peer.service))
        switch view.direction {
        case .outbound:
            (facts.sourceNamespace, facts.sourceWorkload, facts.sourcePod) =
                (reporterNamespace, facts.reporterWorkload, facts.reporterPod)
            (facts.destinationNamespace, facts.destinationWorkload, facts.destinationPod, facts.destinationService) =
                (peer.namespace, peer.workload, peer.pod, peer.service)
        case .inbound:
            (facts.sourceNamespace, facts.sourceWorkload, facts.sourcePod) = (peer.namespace, peer.workload, peer.pod)
            (facts.destinationNamespace, facts.destinationWorkload, facts.destinationPod) =
                (reporterNamespace, facts.reporterWorkload, facts.reporterPod)
        case .unknown:
            break
        }
        if withMeasures, let c = view.common?.pointee {
            facts.reporterNamespace = reporterNamespace
            facts.routeName = store(c.route_name)
            // An address names a side only when nothing else does: formatted only then.
            if facts.sourceWorkload.length == 0 {
                facts.sourceAddress = store(address: c.downstream_remote_address, withPort: false)
            }
            if facts.destinationWorkload.length == 0 && facts.destinationService.length == 0 {
                facts.destinationAddress = store(address: view.direction == .inbound ? c.downstream_local_address
                                                                                    : c.upstream_remote_address)
            }
        }
        return facts
    }

    func store(_ string: UnsafeMutablePointer<CChar>?) -> StringRef {
        guard let string = present(string) else { return StringRef() }
        return store(utf8Bytes(string))
    }

    func store(_ bytes: UnsafeBufferPointer<UInt8>?) -> StringRef {
        guard let bytes, !bytes.isEmpty else { return StringRef() }
        let ref = StringRef(offset: UInt32(pool.count), length: UInt32(bytes.count))
        pool.append(UnsafeRawBufferPointer(bytes))
        return ref
    }

    private func store(address: UnsafeMutablePointer<CAddress>?, withPort: Bool = true) -> StringRef {
        let start = pool.count
        guard pool.appendAddress(address, mode: .text, withPort: withPort) else { return StringRef() }
        return StringRef(offset: UInt32(start), length: UInt32(pool.count - start))
    }

    func store(_ bytes: [UInt8]) -> StringRef {
        bytes.withUnsafeBufferPointer { store($0) }
    }
}
