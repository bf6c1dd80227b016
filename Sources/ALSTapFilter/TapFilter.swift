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
    }

    /// The clauses as parsed (for tests and messages).
    public let clauses: [Clause]

    /// Values one of which every matching entry has in `field` on its destination side (or, when
    /// not `destinationOnly`, on either side): lets a subscriber index offer a subscriber only the
    /// entries that can match. nil when no clause pins a namespace or a workload.
    public struct IndexKey: Sendable, Equatable {
        public enum Field: Sendable, CaseIterable { case namespace, workload }
        public let field: Field
        public let destinationOnly: Bool
        public let values: [[UInt8]]
    }

    public let indexKey: IndexKey?

    /// The most selective key the clauses give: a workload before a namespace, the destination
    /// side before either side.
    private static func indexKey(_ clauses: [Clause]) -> IndexKey? {
        var keys: [IndexKey] = []
        for clause in clauses {
            let (kind, names, destinationOnly): (Kind, [QualifiedName], Bool)
            switch clause {
            case .destination(let k, let n): (kind, names, destinationOnly) = (k, n, true)
            case .either(let k, let n): (kind, names, destinationOnly) = (k, n, false)
            default: continue
            }
            switch kind {
            case .workload:
                keys.append(IndexKey(field: .workload, destinationOnly: destinationOnly, values: names.map(\.name)))
                // `NS/NAME` everywhere also pins the namespace.
                if names.allSatisfy({ $0.namespace != nil }) {
                    keys.append(IndexKey(field: .namespace, destinationOnly: destinationOnly,
                                         values: names.map { $0.namespace! }))
                }
            case .namespace:
                keys.append(IndexKey(field: .namespace, destinationOnly: destinationOnly, values: names.map(\.name)))
            case .pod:
                if names.allSatisfy({ $0.namespace != nil }) {
                    keys.append(IndexKey(field: .namespace, destinationOnly: destinationOnly,
                                         values: names.map { $0.namespace! }))
                }
            }
        }
        return keys.min { rank($0) < rank($1) }
    }

    private static func rank(_ key: IndexKey) -> Int {
        (key.field == .workload ? 0 : 2) + (key.destinationOnly ? 0 : 1)
    }

    /// What an index key of `field` looks up in an entry, on each side (the same values the
    /// clauses test: an outbound destination without peer metadata is known by its service).
    public static func indexedFacts(_ field: IndexKey.Field, _ f: EntryFacts) -> (source: StringRef, destination: StringRef) {
        switch field {
        case .namespace: (f.sourceNamespace, f.destinationNamespace)
        case .workload: (f.sourceWorkload, destinationWorkload(f))
        }
    }

    /// The same, compiled to plain data (no reference-counted payloads), so matching an entry
    /// touches no retain counts.
    private let compiled: [Compiled]
    private let values: [Value]
    private let pool: [UInt8]

    fileprivate enum Test: UInt8 {
        case either, destination, reporter, methods, pathPrefix, authority, scheme, directions, codes, flags
        case minDuration, type, logName
    }

    /// One clause: what to test and which `values` (a range) or numbers it tests against.
    fileprivate struct Compiled: Equatable {
        var test: Test
        var kind: Kind = .namespace
        var firstValue = 0
        var valueCount = 0
        var bits: UInt32 = 0
        var number: Int64 = 0
    }

    /// A string (range of `pool`) with an optional namespace qualifier, or a code range.
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
        for clause in clauses {
            var entry = Compiled(test: .either, firstValue: values.count)
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
            }
            entry.valueCount = values.count - entry.firstValue
            compiled.append(entry)
        }
        self.compiled = compiled
        self.values = values
        self.pool = pool
    }

    public static func == (a: TapFilter, b: TapFilter) -> Bool { a.clauses == b.clauses }

    /// Calls `body` with a matcher valid for the duration of the call (one per batch, so the
    /// per-entry work is pointer reads and byte compares). Not generic on purpose: callers in
    /// other modules would otherwise go through unspecialized generic code once per batch.
    public func withMatcher(_ body: (Matcher) -> Void) {
        compiled.withUnsafeBufferPointer { compiled in
            values.withUnsafeBufferPointer { values in
                pool.withUnsafeBytes { pool in body(Matcher(compiled: compiled, values: values, pool: pool)) }
            }
        }
    }

    public func matches(_ facts: EntryFacts, in table: EntryFactsTable) -> Bool {
        var matched = false
        withMatcher { matched = $0.matches(facts, in: table) }
        return matched
    }

    /// A compiled filter's data as raw buffers; see `withMatcher`.
    public struct Matcher {
        fileprivate let compiled: UnsafeBufferPointer<Compiled>
        fileprivate let values: UnsafeBufferPointer<Value>
        fileprivate let pool: UnsafeRawBufferPointer

        public func matches(_ facts: EntryFacts, in table: EntryFactsTable) -> Bool {
            for clause in compiled where !matches(clause, facts, table) { return false }
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
                return candidates.contains { value in
                    path.count >= value.length && TapFilter.bytesEqual(path.baseAddress!, pool.baseAddress! + value.offset, value.length)
                }
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
    fileprivate static func destinationWorkload(_ f: EntryFacts) -> StringRef {
        f.destinationWorkload.length > 0 ? f.destinationWorkload : f.destinationService
    }

    @inline(__always)
    fileprivate static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 65 && byte <= 90 ? byte + 32 : byte
    }
}
