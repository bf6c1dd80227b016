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
/// Compiled once per subscriber; `matches` compares bytes in place and allocates nothing.
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

    public var clauses: [Clause]

    public init(clauses: [Clause]) {
        self.clauses = clauses
    }

    public func matches(_ facts: EntryFacts, in table: EntryFactsTable) -> Bool {
        for clause in clauses where !Self.matches(clause, facts, table) { return false }
        return true
    }

    private static func matches(_ clause: Clause, _ f: EntryFacts, _ table: EntryFactsTable) -> Bool {
        switch clause {
        case .either(let kind, let names):
            return side(kind, f.sourceNamespace, f.sourceWorkload, f.sourcePod, names, table)
                || side(kind, f.destinationNamespace, destinationWorkload(f), f.destinationPod, names, table)
        case .destination(let kind, let names):
            return side(kind, f.destinationNamespace, destinationWorkload(f), f.destinationPod, names, table)
        case .reporter(let kind, let names):
            let (namespace, workload, pod) = f.direction == .inbound
                ? (f.destinationNamespace, f.destinationWorkload, f.destinationPod)
                : (f.sourceNamespace, f.sourceWorkload, f.sourcePod)
            return side(kind, namespace, kind == .workload ? f.reporterWorkload : workload,
                        kind == .pod ? f.reporterPod : pod, names, table)
        case .methods(let mask):
            return f.method < 16 && mask & (1 << f.method) != 0
        case .pathPrefix(let prefixes):
            let path = table.bytes(f.path)
            return prefixes.contains { prefix in path.count >= prefix.count && startsWith(path, prefix) }
        case .authority(let values):
            return values.contains { equals(table.bytes(f.authority), $0) }
        case .scheme(let values):
            let scheme = table.bytes(f.scheme)
            return values.contains { value in
                value.count == scheme.count && zip(value, scheme).allSatisfy { $0 == lowercased($1) }
            }
        case .directions(let inbound, let outbound):
            return (inbound && f.direction == .inbound) || (outbound && f.direction == .outbound)
        case .codes(let ranges):
            return f.code != 0 && ranges.contains { $0.contains(f.code) }
        case .flags(let mask):
            return f.flags & mask != 0
        case .minDurationMicros(let minimum):
            return f.durationMicros >= minimum
        case .type(let isTCP):
            return f.isTCP == isTCP
        case .logName(let values):
            return values.contains { equals(table.bytes(f.logName), $0) }
        }
    }

    /// Without peer metadata an outbound destination is known by its service name only.
    @inline(__always)
    private static func destinationWorkload(_ f: EntryFacts) -> StringRef {
        f.destinationWorkload.length > 0 ? f.destinationWorkload : f.destinationService
    }

    /// One side (namespace, workload, pod) against qualified names of `kind`.
    private static func side(_ kind: Kind, _ namespace: StringRef, _ workload: StringRef, _ pod: StringRef,
                             _ names: [QualifiedName], _ table: EntryFactsTable) -> Bool {
        let namespaceBytes = table.bytes(namespace)
        let nameBytes: UnsafeRawBufferPointer
        switch kind {
        case .namespace: nameBytes = namespaceBytes
        case .workload: nameBytes = table.bytes(workload)
        case .pod: nameBytes = table.bytes(pod)
        }
        guard !nameBytes.isEmpty else { return false }
        return names.contains { wanted in
            equals(nameBytes, wanted.name) && (wanted.namespace.map { equals(namespaceBytes, $0) } ?? true)
        }
    }

    @inline(__always)
    private static func equals(_ bytes: UnsafeRawBufferPointer, _ value: [UInt8]) -> Bool {
        bytes.count == value.count && startsWith(bytes, value)
    }

    @inline(__always)
    private static func startsWith(_ bytes: UnsafeRawBufferPointer, _ prefix: [UInt8]) -> Bool {
        prefix.isEmpty || prefix.withUnsafeBytes { memcmp(bytes.baseAddress!, $0.baseAddress!, prefix.count) == 0 }
    }

    @inline(__always)
    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 65 && byte <= 90 ? byte + 32 : byte
    }
}
