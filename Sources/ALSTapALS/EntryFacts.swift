import CEnvoyProtos

/// A string stored in a batch's string pool; `length == 0` means absent.
public struct StringRef: Sendable {
    public var offset: UInt32 = 0
    public var length: UInt32 = 0
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
    public var sourceNamespace = StringRef(), sourceWorkload = StringRef(), sourcePod = StringRef()
    public var destinationNamespace = StringRef(), destinationWorkload = StringRef(), destinationPod = StringRef()
    public var destinationService = StringRef()
    public var reporterWorkload = StringRef(), reporterPod = StringRef()
    public var path = StringRef(), authority = StringRef(), scheme = StringRef(), logName = StringRef()
}

/// The facts of one batch and the pool their strings live in. Immutable once built.
public struct EntryFactsTable: Sendable {
    public let facts: [EntryFacts]
    public let strings: SharedBytes

    /// The bytes of `ref` (empty when absent).
    @inline(__always)
    public func bytes(_ ref: StringRef) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: strings.base + Int(ref.offset), count: Int(ref.length))
    }
}

/// Builds `EntryFactsTable`s, reusing its buffers from batch to batch.
final class EntryFactsBuilder {
    private var facts: [EntryFacts] = []
    private let pool = ByteWriter(capacity: 64 * 1024)
    private let flagCodes: ResponseFlagCodes

    init(flagCodes: ResponseFlagCodes) {
        self.flagCodes = flagCodes
    }

    func reset() {
        facts.removeAll(keepingCapacity: true)
        pool.removeAll()
    }

    func finish() -> EntryFactsTable {
        EntryFactsTable(facts: facts, strings: SharedBytes(copying: pool.bytes))
    }

    func add(http entry: UnsafePointer<CHTTPEntry>, view: EntryView, reporter: Reporter) {
        var facts = common(view, reporter: reporter)
        if let request = entry.pointee.request?.pointee {
            facts.method = UInt8(truncatingIfNeeded: request.request_method.rawValue)
            facts.path = store(request.path)
            facts.authority = store(request.authority)
            facts.scheme = store(request.scheme)
        }
        if let code = entry.pointee.response?.pointee.response_code {
            facts.code = UInt16(clamping: code.pointee.value)
        }
        self.facts.append(facts)
    }

    func add(tcp entry: UnsafePointer<CTCPEntry>, view: EntryView, reporter: Reporter) {
        var facts = common(view, reporter: reporter)
        facts.isTCP = true
        self.facts.append(facts)
    }

    private func common(_ view: EntryView, reporter: Reporter) -> EntryFacts {
        var facts = EntryFacts()
        facts.direction = view.direction
        if let c = view.common?.pointee {
            if let flags = c.response_flags { facts.flags = flagCodes.mask(flags) }
            if let total = c.duration { facts.durationMicros = total.pointee.seconds * 1_000_000 + Int64(total.pointee.nanos) / 1000 }
        }
        let reporterNamespace = store(reporter.namespaceBytes)
        facts.reporterWorkload = store(reporter.workloadBytes)
        facts.reporterPod = store(reporter.podBytes)
        facts.logName = store(reporter.logNameBytes)
        let peer = (namespace: store(view.peer.namespace), workload: store(view.peer.workload),
                    pod: store(view.peer.pod), service: store(view.peer.service))
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
        return facts
    }

    private func store(_ string: UnsafeMutablePointer<CChar>?) -> StringRef {
        guard let string = present(string) else { return StringRef() }
        return store(utf8Bytes(string))
    }

    private func store(_ bytes: UnsafeBufferPointer<UInt8>?) -> StringRef {
        guard let bytes, !bytes.isEmpty else { return StringRef() }
        let ref = StringRef(offset: UInt32(pool.count), length: UInt32(bytes.count))
        pool.append(UnsafeRawBufferPointer(bytes))
        return ref
    }

    private func store(_ bytes: [UInt8]) -> StringRef {
        bytes.withUnsafeBufferPointer { store($0) }
    }
}
