import ALSTapALS
#if canImport(Glibc)
import Glibc
#endif

/// A workload or pod name, optionally qualified by namespace (`NS/NAME`).
public struct QualifiedName: Sendable, Equatable {
    public var namespace: [UInt8]?
    public var name: [UInt8]
}

/// A compiled subscriber filter: clauses AND together, the values inside one clause OR.
/// Compiled once per subscriber; matching compares bytes in place and allocates nothing.
public struct TapFilter: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case namespace, workload, pod }

    public enum Clause: Sendable, Equatable {
        /// Source or destination is in one of the namespaces / is one of the workloads or pods.
        case either(Kind, [QualifiedName])
        /// The destination is one of these.
        case destination(Kind, [QualifiedName])
        /// The reporting sidecar is one of these workloads or pods.
        case reporter(Kind, [QualifiedName])
        /// Bit set of `RequestMethod` raw values.
        case methods(UInt16)
        case pathPrefix([[UInt8]])
        case authority([[UInt8]])
        /// Lowercased.
        case scheme([[UInt8]])
        case directions(inbound: Bool, outbound: Bool)
        case codes([ClosedRange<UInt16>])
        /// Any of these ResponseFlags bits.
        case flags(UInt32)
        case minDurationMicros(Int64)
        case type(isTCP: Bool)
        case logName([[UInt8]])
        /// OTLP trace ids, lowercase hex.
        case traceId([[UInt8]])
        /// Total duration at most this many µs.
        case maxDurationMicros(Int64)
        /// Response body bytes (TCP: bytes sent) at least / at most.
        case minBytes(UInt64)
        case maxBytes(UInt64)
        /// A logged request or response header: present (`value` nil) or with exactly this value.
        /// Names lowercased (compared without regard to case).
        case headers([HeaderTest])
        case userAgentPrefix([[UInt8]])
        /// Label selectors (any of them) on either side's labels, or on the reporter's.
        case labels(reporter: Bool, [LabelSelector])
        /// A 5xx, a response flag, or a gRPC status other than OK.
        case errors
        /// Kubelet probes (`kube-probe/` user agent) and Istio's own health and stats paths.
        case probes
        /// None of the entries the clause matches.
        /// The entry started at or after / at or before this time (µs since the epoch): a
        /// capture read back with `--since` / `--until`.
        case startedFrom(Int64)
        case startedUntil(Int64)
        indirect case not(Clause)
    }

    public struct HeaderTest: Sendable, Equatable {
        public var name: [UInt8]
        public var value: [UInt8]?

        public init(name: [UInt8], value: [UInt8]?) {
            self.name = name
            self.value = value
        }
    }

    /// `app=reviews,version!=v1,canary,!legacy`: every requirement holds (as `kubectl -l`).
    public struct LabelSelector: Sendable, Equatable {
        public enum Operation: UInt16, Sendable { case equals, notEquals, exists, absent }
        public struct Requirement: Sendable, Equatable {
            public var key: [UInt8]
            public var operation: Operation
            public var value: [UInt8]

            public init(key: [UInt8], _ operation: Operation, value: [UInt8] = []) {
                self.key = key
                self.operation = operation
                self.value = value
            }
        }
        public var requirements: [Requirement]

        public init(_ requirements: [Requirement]) { self.requirements = requirements }
    }

    /// Paths Istio's sidecar serves itself or that kubelet's rewritten probes use.
    static let probePaths = ["/healthz/ready", "/app-health/", "/stats/prometheus"].map { Array($0.utf8) }
    static let probeAgent = Array("kube-probe/".utf8)

    /// The clauses as parsed (for tests and messages).
    public let clauses: [Clause]

    /// The facts the decoder computes for this filter: the details too when a clause reads them.
    /// Stored: sinks test it for every batch they are offered.
    public let factsNeed: FactsNeed

    private static func factsNeed(_ clauses: [Clause]) -> FactsNeed {
        func needsDetails(_ clause: Clause) -> Bool {
            switch clause {
            case .headers, .userAgentPrefix, .labels, .errors, .probes: true
            case .not(let inner): needsDetails(inner)
            default: false
            }
        }
        return clauses.contains(where: needsDetails) ? [.filters, .details] : .filters
    }

    public let indexKey: IndexKey?

    /// The clauses compiled to plain data, for matching entries.
    public let matcher: Matcher

    fileprivate enum Test: UInt8 {
        case either, destination, reporter, methods, pathPrefix, authority, scheme, directions, codes, flags
        case minDuration, type, logName, traceId, maxDuration, minBytes, maxBytes, headers, userAgentPrefix, labels
        case errors, probes, startedFrom, startedUntil
    }

    /// One clause: what to test and which `values` (a range) or numbers it tests against.
    fileprivate struct Compiled: Equatable {
        var test: Test
        /// `!name=…`: the entry passes when the test fails.
        var negated = false
        var kind: Kind = .namespace
        var firstValue = 0
        var valueCount = 0
        var bits: UInt32 = 0
        var number: Int64 = 0
    }

    /// A string (range of `pool`) with an optional namespace qualifier, or a code range. Headers:
    /// the name, and the value as the qualifier (absent: presence). Labels: one requirement, its
    /// key, its value as the qualifier, the operation in `low` and its selector's number in `high`.
    fileprivate struct Value: Equatable {
        var offset = 0
        var length = 0
        var namespaceOffset = 0
        var namespaceLength = -1
        var low: UInt16 = 0
        var high: UInt16 = 0
    }

    public init(clauses: [Clause]) {
        self.clauses = clauses
        indexKey = Self.indexKey(clauses)
        factsNeed = Self.factsNeed(clauses)
        var compiled: [Compiled] = []
        var values: [Value] = []
        var pool: [UInt8] = []
        func add(_ bytes: [UInt8], namespace: [UInt8]? = nil) {
            var value = Value(offset: pool.count, length: bytes.count)
            pool += bytes
            if let namespace {
                value.namespaceOffset = pool.count
                value.namespaceLength = namespace.count
                pool += namespace
            }
            values.append(value)
        }
        for var clause in clauses {
            var entry = Compiled(test: .either, firstValue: values.count)
            if case .not(let inner) = clause {
                entry.negated = true
                clause = inner
            }
            switch clause {
            case .either(let kind, let names), .destination(let kind, let names), .reporter(let kind, let names):
                if case .destination = clause { entry.test = .destination }
                if case .reporter = clause { entry.test = .reporter }
                entry.kind = kind
                for name in names { add(name.name, namespace: name.namespace) }
            case .methods(let mask): (entry.test, entry.bits) = (.methods, UInt32(mask))
            case .pathPrefix(let prefixes): entry.test = .pathPrefix; prefixes.forEach { add($0) }
            case .authority(let exact): entry.test = .authority; exact.forEach { add($0) }
            case .scheme(let exact): entry.test = .scheme; exact.forEach { add($0) }
            case .directions(let inbound, let outbound):
                (entry.test, entry.bits) = (.directions, (inbound ? 1 : 0) | (outbound ? 2 : 0))
            case .codes(let ranges):
                entry.test = .codes
                for range in ranges { values.append(Value(low: range.lowerBound, high: range.upperBound)) }
            case .flags(let mask): (entry.test, entry.bits) = (.flags, mask)
            case .minDurationMicros(let micros): (entry.test, entry.number) = (.minDuration, micros)
            case .type(let isTCP): (entry.test, entry.bits) = (.type, isTCP ? 1 : 0)
            case .logName(let exact): entry.test = .logName; exact.forEach { add($0) }
            case .traceId(let exact): entry.test = .traceId; exact.forEach { add($0) }
            case .maxDurationMicros(let micros): (entry.test, entry.number) = (.maxDuration, micros)
            case .startedFrom(let micros): (entry.test, entry.number) = (.startedFrom, micros)
            case .startedUntil(let micros): (entry.test, entry.number) = (.startedUntil, micros)
            case .minBytes(let bytes): (entry.test, entry.number) = (.minBytes, Int64(clamping: bytes))
            case .maxBytes(let bytes): (entry.test, entry.number) = (.maxBytes, Int64(clamping: bytes))
            case .headers(let tests):
                entry.test = .headers
                for test in tests { add(test.name, namespace: test.value) }
            case .userAgentPrefix(let prefixes): entry.test = .userAgentPrefix; prefixes.forEach { add($0) }
            case .labels(let reporter, let selectors):
                (entry.test, entry.bits) = (.labels, reporter ? 1 : 0)
                for (number, selector) in selectors.enumerated() {
                    for requirement in selector.requirements {
                        add(requirement.key, namespace: requirement.operation == .equals || requirement.operation == .notEquals
                            ? requirement.value : nil)
                        values[values.count - 1].low = requirement.operation.rawValue
                        values[values.count - 1].high = UInt16(truncatingIfNeeded: number)
                    }
                }
            case .errors: entry.test = .errors
            case .probes:
                entry.test = .probes
                add(Self.probeAgent)
                Self.probePaths.forEach { add($0) }
            case .not: preconditionFailure("a negation of a negation is not parsed")
            }
            entry.valueCount = values.count - entry.firstValue
            compiled.append(entry)
        }
        matcher = Matcher(compiled: compiled, values: values, pool: pool)
    }

    public static func == (a: TapFilter, b: TapFilter) -> Bool { a.clauses == b.clauses }

    public func matches(_ facts: EntryFacts, in table: EntryFactsTable) -> Bool {
        matcher.matches(facts, in: table)
    }

    /// A compiled filter: clauses, values and their bytes in buffers allocated once, so matching
    /// an entry is pointer reads and byte compares, touching no retain counts.
    ///
    /// `@unchecked Sendable`: the buffers are written in `init` and only read afterwards.
    public final class Matcher: @unchecked Sendable {
        private let compiled: UnsafeMutableBufferPointer<Compiled>
        private let values: UnsafeMutableBufferPointer<Value>
        private let pool: UnsafeMutableRawBufferPointer

        fileprivate init(compiled: [Compiled], values: [Value], pool: [UInt8]) {
            self.compiled = .allocate(capacity: compiled.count)
            _ = self.compiled.initialize(from: compiled)
            self.values = .allocate(capacity: values.count)
            _ = self.values.initialize(from: values)
            self.pool = .allocate(byteCount: max(pool.count, 1), alignment: 8)
            pool.withUnsafeBytes { self.pool.copyMemory(from: $0) }
        }

        deinit {
            compiled.deallocate()
            values.deallocate()
            pool.deallocate()
        }

        /// Record `index` of `table`: a paired record matches if either half does.
        @inline(__always)
        public func matches(record index: Int, in table: EntryFactsTable) -> Bool {
            let stride = table.stride
            return table.facts.withUnsafeBufferPointer { facts in
                (0..<stride).contains { matches(facts[index * stride + $0], in: table) }
            }
        }

        public func matches(_ facts: EntryFacts, in table: EntryFactsTable) -> Bool {
            for clause in compiled where matches(clause, facts, table) == clause.negated { return false }
            return true
        }

        private func matches(_ clause: Compiled, _ f: EntryFacts, _ table: EntryFactsTable) -> Bool {
            let candidates = UnsafeBufferPointer(rebasing: values[clause.firstValue..<(clause.firstValue + clause.valueCount)])
            switch clause.test {
            case .either:
                return side(clause.kind, f.sourceNamespace, f.sourceWorkload, f.sourcePod, candidates, table)
                    || side(clause.kind, f.destinationNamespace, TapFilter.destinationWorkload(f), f.destinationPod,
                            candidates, table)
            case .destination:
                return side(clause.kind, f.destinationNamespace, TapFilter.destinationWorkload(f), f.destinationPod,
                            candidates, table)
            case .reporter:
                let namespace = f.direction == .inbound ? f.destinationNamespace : f.sourceNamespace
                return side(clause.kind, namespace, f.reporterWorkload, f.reporterPod, candidates, table)
            case .methods:
                return f.method < 16 && clause.bits & (1 << UInt32(f.method)) != 0
            case .pathPrefix:
                let path = table.bytes(f.path)
                return candidates.contains { hasPrefix(path, $0) }
            case .authority:
                return candidates.contains { equals(table.bytes(f.authority), $0) }
            case .scheme:
                let scheme = table.bytes(f.scheme)
                return candidates.contains { value in
                    value.length == scheme.count
                        && (0..<value.length).allSatisfy { pool[value.offset + $0] == TapFilter.lowercased(scheme[$0]) }
                }
            case .directions:
                return (clause.bits & 1 != 0 && f.direction == .inbound) || (clause.bits & 2 != 0 && f.direction == .outbound)
            case .codes:
                return f.code != 0 && candidates.contains { $0.low <= f.code && f.code <= $0.high }
            case .flags:
                return f.flags & clause.bits != 0
            case .minDuration:
                return f.durationMicros >= clause.number
            case .type:
                return f.isTCP == (clause.bits == 1)
            case .logName:
                return candidates.contains { equals(table.bytes(f.logName), $0) }
            case .traceId:
                return candidates.contains { equals(table.bytes(f.traceId), $0) }
            case .maxDuration:
                return f.durationMicros >= 0 && f.durationMicros <= clause.number
            case .startedFrom:
                return f.startMicros >= clause.number
            case .startedUntil:
                return f.startMicros <= clause.number
            case .minBytes:
                return Int64(clamping: f.bytesSent) >= clause.number
            case .maxBytes:
                return Int64(clamping: f.bytesSent) <= clause.number
            case .headers:
                return candidates.contains { header($0, f.headers, table) }
            case .userAgentPrefix:
                return candidates.contains { hasPrefix(table.bytes(f.userAgent), $0) }
            case .labels:
                return clause.bits == 1 ? selects(candidates, f.reporterLabels, table)
                    : selects(candidates, f.reporterLabels, table) || selects(candidates, f.peerLabels, table)
            case .errors:
                return f.code >= 500 || f.flags != 0 || f.grpcStatus > 0
            case .probes:
                let path = table.bytes(f.path)
                return hasPrefix(table.bytes(f.userAgent), candidates[0])
                    || candidates.dropFirst().contains { hasPrefix(path, $0) }
            }
        }

        @inline(__always)
        private func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ value: Value) -> Bool {
            bytes.count >= value.length
                && (value.length == 0 || TapFilter.bytesEqual(bytes.baseAddress!, pool.baseAddress! + value.offset, value.length))
        }

        /// A logged header named `value` (without regard to case), with its qualifier as value if any.
        private func header(_ value: Value, _ headers: PairRange, _ table: EntryFactsTable) -> Bool {
            table.pairs.withUnsafeBufferPointer { pairs in
                pairs[Int(headers.first)..<Int(headers.first + headers.count)].contains { pair in
                    let name = table.bytes(pair.name)
                    return name.count == value.length
                        && (0..<value.length).allSatisfy { TapFilter.lowercased(name[$0]) == pool[value.offset + $0] }
                        && (value.namespaceLength < 0
                            || equals(table.bytes(pair.value), offset: value.namespaceOffset, length: value.namespaceLength))
                }
            }
        }

        /// Some selector among `requirements` (grouped by `high`) all of whose requirements `labels`
        /// meet. A side without labels is one whose labels are unknown (no peer metadata, no
        /// `LABELS`): it meets no selector, not even `version!=v1`.
        private func selects(_ requirements: UnsafeBufferPointer<Value>, _ labels: PairRange, _ table: EntryFactsTable) -> Bool {
            guard labels.count > 0 else { return false }
            return table.pairs.withUnsafeBufferPointer { pairs in
                let labels = pairs[Int(labels.first)..<Int(labels.first + labels.count)]
                var start = 0
                while start < requirements.count {
                    var end = start + 1
                    while end < requirements.count && requirements[end].high == requirements[start].high { end += 1 }
                    if requirements[start..<end].allSatisfy({ meets($0, labels, table) }) { return true }
                    start = end
                }
                return false
            }
        }

        private func meets(_ requirement: Value, _ labels: Slice<UnsafeBufferPointer<StringPair>>, _ table: EntryFactsTable) -> Bool {
            let label = labels.first { equals(table.bytes($0.name), requirement) }
            switch TapFilter.LabelSelector.Operation(rawValue: requirement.low)! {
            case .exists: return label != nil
            case .absent: return label == nil
            case .equals:
                guard let label else { return false }
                return equals(table.bytes(label.value), offset: requirement.namespaceOffset, length: requirement.namespaceLength)
            case .notEquals:
                guard let label else { return true }
                return !equals(table.bytes(label.value), offset: requirement.namespaceOffset, length: requirement.namespaceLength)
            }
        }

        /// One side (namespace, workload, pod) against qualified names of `kind`.
        private func side(_ kind: Kind, _ namespace: StringRef, _ workload: StringRef, _ pod: StringRef,
                          _ candidates: UnsafeBufferPointer<Value>, _ table: EntryFactsTable) -> Bool {
            let namespaceBytes = table.bytes(namespace)
            let nameBytes: UnsafeRawBufferPointer
            switch kind {
            case .namespace: nameBytes = namespaceBytes
            case .workload: nameBytes = table.bytes(workload)
            case .pod: nameBytes = table.bytes(pod)
            }
            guard !nameBytes.isEmpty else { return false }
            return candidates.contains { value in
                equals(nameBytes, value)
                    && (value.namespaceLength < 0 || equals(namespaceBytes, offset: value.namespaceOffset,
                                                            length: value.namespaceLength))
            }
        }

        @inline(__always)
        private func equals(_ bytes: UnsafeRawBufferPointer, _ value: Value) -> Bool {
            equals(bytes, offset: value.offset, length: value.length)
        }

        @inline(__always)
        private func equals(_ bytes: UnsafeRawBufferPointer, offset: Int, length: Int) -> Bool {
            bytes.count == length && (length == 0 || TapFilter.bytesEqual(bytes.baseAddress!, pool.baseAddress! + offset, length))
        }
    }

    /// Compares short byte strings (names are mostly under 32 bytes) 8 bytes at a time, inline,
    /// where a memcmp call would cost more than the comparison.
    @inline(__always)
    static func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ length: Int) -> Bool {
        var i = 0
        while i + 8 <= length {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i += 8
        }
        while i < length {
            if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
            i += 1
        }
        return true
    }

    /// Without peer metadata an outbound destination is known by its service name only.
    @inline(__always)
    static func destinationWorkload(_ f: EntryFacts) -> StringRef {
        f.destinationWorkload.length > 0 ? f.destinationWorkload : f.destinationService
    }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 65 && byte <= 90 ? byte + 32 : byte
    }
}
