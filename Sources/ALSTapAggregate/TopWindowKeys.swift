import ALSTapALS
import ALSTapFilter
import ALSTapFormats

/// A group's key and labels, from an entry's facts: what `TopWindow` groups by.
extension TopWindow {
    /// The group key of an entry for this grouping, into `scratch`.
    func writeKey(_ f: EntryFacts, _ t: EntryFactsTable) {
        switch grouping {
        case .edge:
            writeSource(f, t)
            writeDestination(f, t)
        case .route:
            writeSource(f, t)
            writeDestination(f, t)
            scratch.append(f.method)
            writePart(t.bytes(f.authority))
            if f.routeName.length > 0 {
                scratch.append(1)
                writePart(t.bytes(f.routeName))
            } else {
                scratch.append(0)
                writeFoldedPath(t.bytes(f.path))
            }
        case .destination:
            writeDestination(f, t)
        case .source:
            writeSource(f, t)
        case .reporter:
            writeIdentity(f.reporterWorkload.length > 0 ? .workload : .unknown, t.bytes(f.reporterWorkload), t.bytes(f.reporterNamespace))
        }
    }

    private func writeSource(_ f: EntryFacts, _ t: EntryFactsTable) {
        let (kind, name, namespace) = Self.source(f, t)
        writeIdentity(kind, name, namespace)
    }

    private func writeDestination(_ f: EntryFacts, _ t: EntryFactsTable) {
        let (kind, name, namespace) = Self.destination(f, t)
        writeIdentity(kind, name, namespace)
    }

    private func writeIdentity(_ kind: TopIdentity.Kind, _ name: UnsafeRawBufferPointer, _ namespace: UnsafeRawBufferPointer) {
        scratch.append(kind.rawValue)
        writePart(name)
        writePart(namespace)
    }

    /// A length-prefixed part (so that no two different labels make the same key), cut at `maxLabelBytes`.
    private func writePart(_ bytes: UnsafeRawBufferPointer) {
        let count = min(bytes.count, Self.maxLabelBytes)
        scratch.append(UInt8(count & 0xff))
        scratch.append(UInt8(count >> 8))
        if count > 0 { scratch.appendShort(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), count: count) }
    }

    /// `writePart` of the folded path, folded straight into the key.
    private func writeFoldedPath(_ path: UnsafeRawBufferPointer) {
        let mark = scratch.count
        scratch.append(0)
        scratch.append(0)
        RouteFolding.fold(path) { piece in
            if piece.count > 0 { scratch.append(piece) }
        }
        let length = min(scratch.count - mark - 2, Self.maxLabelBytes)
        scratch.truncate(to: mark + 2 + length)
        scratch.base[mark] = UInt8(length & 0xff)
        scratch.base[mark + 1] = UInt8(length >> 8)
    }

    /// The reporter for outbound entries; else the peer's workload, else the client's IP.
    static func source(_ f: EntryFacts, _ t: EntryFactsTable) -> (TopIdentity.Kind, UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        if f.sourceWorkload.length > 0 { return (.workload, t.bytes(f.sourceWorkload), t.bytes(f.sourceNamespace)) }
        if f.sourceAddress.length > 0 { return (.address, t.bytes(f.sourceAddress), UnsafeRawBufferPointer(start: nil, count: 0)) }
        return (.unknown, UnsafeRawBufferPointer(start: nil, count: 0), UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// The peer's or reporter's workload, else the service from the cluster name, else the address.
    static func destination(_ f: EntryFacts, _ t: EntryFactsTable) -> (TopIdentity.Kind, UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        if f.destinationWorkload.length > 0 { return (.workload, t.bytes(f.destinationWorkload), t.bytes(f.destinationNamespace)) }
        if f.destinationService.length > 0 { return (.service, t.bytes(f.destinationService), t.bytes(f.destinationNamespace)) }
        if f.destinationAddress.length > 0 { return (.address, t.bytes(f.destinationAddress), UnsafeRawBufferPointer(start: nil, count: 0)) }
        return (.unknown, UnsafeRawBufferPointer(start: nil, count: 0), UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// The row labels of a new group (built once per group, not per entry).
    func label(_ f: EntryFacts, _ t: EntryFactsTable) -> TopRow {
        func identity(_ side: (TopIdentity.Kind, UnsafeRawBufferPointer, UnsafeRawBufferPointer)) -> TopIdentity {
            TopIdentity(kind: side.0, name: Self.cut(side.1), namespace: Self.cut(side.2))
        }
        var row = TopRow()
        switch grouping {
        case .edge:
            row.source = identity(Self.source(f, t))
            row.destination = identity(Self.destination(f, t))
        case .route:
            row.source = identity(Self.source(f, t))
            row.destination = identity(Self.destination(f, t))
            row.method = JSONLineEncoder.methodName(UInt32(f.method))?.description ?? ""
            row.authority = Self.cut(t.bytes(f.authority))
            row.route = f.routeName.length > 0 ? Self.cut(t.bytes(f.routeName)) : Self.cut(RouteFolding.fold(t.bytes(f.path)))
        case .destination:
            row.destination = identity(Self.destination(f, t))
        case .source:
            row.source = identity(Self.source(f, t))
        case .reporter:
            row.reporter = identity((f.reporterWorkload.length > 0 ? .workload : .unknown, t.bytes(f.reporterWorkload), t.bytes(f.reporterNamespace)))
        }
        return row
    }

    private static func cut(_ bytes: UnsafeRawBufferPointer) -> [UInt8] { Array(bytes.prefix(maxLabelBytes)) }
    private static func cut(_ bytes: [UInt8]) -> [UInt8] { Array(bytes.prefix(maxLabelBytes)) }
}
