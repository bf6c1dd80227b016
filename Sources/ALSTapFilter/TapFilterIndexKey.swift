import ALSTapALS

/// The key a filter offers the subscriber index (`SubscriberIndex`): positive clauses that pin a
/// namespace or a workload. A negated clause pins nothing, so it never gives a key.
extension TapFilter {
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

    /// The most selective key the clauses give: a workload in a namespace before a workload
    /// before a namespace, the destination side before either side.
    static func indexKey(_ clauses: [Clause]) -> IndexKey? {
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
}
