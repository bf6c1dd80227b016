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
    }

    /// The clauses as parsed (for tests and messages).
    public let clauses: [Clause]

    /// Values one of which every matching entry has in `field` on its destination side (or, when
    /// not `destinationOnly`, on either side): lets a subscriber index offer a subscriber only the
    /// entries that can match. nil when no clause pins a namespace or a workload.
    public struct IndexKey: Sendable, Equatable {
        public enum Field: Sendable, CaseIterable {
            case namespace, workload
            /// A workload in a namespace, both on the same side: the most selective key.
            case namespacedWorkload
        }
        public let field: Field
        public let destinationOnly: Bool
        /// The values' hashes (see `hash`).
        public let hashes: [UInt64]

        init(_ field: Field, destinationOnly: Bool, _ values: [(namespace: [UInt8], name: [UInt8])]) {
            self.field = field
            self.destinationOnly = destinationOnly
            hashes = Array(Set(values.map { value in
                value.namespace.withUnsafeBytes { namespace in
                    value.name.withUnsafeBytes { Self.hash(field, namespace, $0) }
                }
            }))
        }

        init(_ field: Field, destinationOnly: Bool, names: [[UInt8]]) {
            self.init(field, destinationOnly: destinationOnly, names.map { (namespace: [], name: $0) })
        }

        /// The keys an entry has for `field`, per side (nil: the side lacks the value, or
        /// `withSource` is false). A collision only makes a subscriber a candidate; its filter
        /// still decides.
        @inline(__always)
        public static func hashes(_ field: Field, _ f: EntryFacts, in table: EntryFactsTable, withSource: Bool)
            -> (source: UInt64?, destination: UInt64?) {
            func key(_ namespace: StringRef, _ workload: StringRef) -> UInt64? {
                let none = UnsafeRawBufferPointer(start: nil, count: 0)
                switch field {
                case .namespace:
                    return namespace.length == 0 ? nil : hash(field, none, table.bytes(namespace))
                case .workload:
                    return workload.length == 0 ? nil : hash(field, none, table.bytes(workload))
                case .namespacedWorkload:
                    return namespace.length == 0 || workload.length == 0 ? nil
                        : hash(field, table.bytes(namespace), table.bytes(workload))
                }
            }
            // The same values the clauses test: an outbound destination without peer metadata
            // is known by its service name.
            return (withSource ? key(f.sourceNamespace, f.sourceWorkload) : nil,
                    key(f.destinationNamespace, destinationWorkload(f)))
        }

        /// FNV-1a, 64 bits, over the field, the namespace and the name.
        @inline(__always)
        static func hash(_ field: Field, _ namespace: UnsafeRawBufferPointer, _ name: UnsafeRawBufferPointer) -> UInt64 {
            var hash: UInt64 = switch field {
            case .namespace: 0xcbf2_9ce4_8422_2325
            case .workload: 0x8422_2325_cbf2_9ce4
            case .namespacedWorkload: 0x9ce4_cbf2_2325_8422
            }
            for byte in namespace { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            hash = (hash ^ 0x2f) &* 0x100_0000_01b3
            for byte in name { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return hash
        }
    }

    public let indexKey: IndexKey?

    /// The most selective key the clauses give: a workload in a namespace before a workload
    /// before a namespace, the destination side before either side.
    private static func indexKey(_ clauses: [Clause]) -> IndexKey? {
        var keys: [IndexKey] = []
        // Namespaces every matching entry's destination is in (the first such clause).
        let destinationNamespaces: [[UInt8]]? = clauses.lazy.compactMap { clause -> [[UInt8]]? in
            guard case .destination(.namespace, let names) = clause else { return nil }
            return names.map(\.name)
        }.first
        for clause in clauses {
            let (kind, names, destinationOnly): (Kind, [QualifiedName], Bool)
            switch clause {
            case .destination(let k, let n): (kind, names, destinationOnly) = (k, n, true)
            case .either(let k, let n): (kind, names, destinationOnly) = (k, n, false)
            default: continue
            }
            switch kind {
            case .workload:
                keys.append(IndexKey(.workload, destinationOnly: destinationOnly, names: names.map(\.name)))
                // The namespace on the same side: from `NS/NAME`, or for the destination from a
                // destination namespace clause. (`ns=` with `workload=` may match on different sides.)
                if let pairs = namespacedWorkloads(names, namespaces: destinationOnly ? destinationNamespaces : nil) {
                    keys.append(IndexKey(.namespacedWorkload, destinationOnly: destinationOnly, pairs))
                }
            case .namespace:
                keys.append(IndexKey(.namespace, destinationOnly: destinationOnly, names: names.map(\.name)))
            case .pod:
                if names.allSatisfy({ $0.namespace != nil }) {
                    keys.append(IndexKey(.namespace, destinationOnly: destinationOnly, names: names.map { $0.namespace! }))
                }
            }
        }
        return keys.min { rank($0) < rank($1) }
    }

    /// Every (namespace, workload) a clause's names allow, given the namespaces another clause
    /// requires of the same side; nil when some name leaves the namespace open, or too many.
    private static func namespacedWorkloads(_ names: [QualifiedName], namespaces: [[UInt8]]?)
        -> [(namespace: [UInt8], name: [UInt8])]? {
        var pairs: [(namespace: [UInt8], name: [UInt8])] = []
        for name in names {
            if let namespace = name.namespace {
                if namespaces?.contains(namespace) ?? true { pairs.append((namespace, name.name)) }
            } else if let namespaces {
                pairs += namespaces.map { ($0, name.name) }
            } else {
                return nil
            }
        }
        return pairs.count <= 256 ? pairs : nil
    }

    private static func rank(_ key: IndexKey) -> Int {
        let field = switch key.field {
        case .namespacedWorkload: 0
        case .workload: 2
        case .namespace: 4
        }
        return field + (key.destinationOnly ? 0 : 1)
    }

    /// The clauses compiled to plain data, for matching entries.
    public let matcher: Matcher

    fileprivate enum Test: UInt8 {
        case either, destination, reporter, methods, pathPrefix, authority, scheme, directions, codes, flags
        case minDuration, type, logName, traceId
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
            case .traceId(let exact): entry.test = .traceId; exact.forEach { add($0) }
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
            case .traceId:
                return candidates.contains { equals(table.bytes(f.traceId), $0) }
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
