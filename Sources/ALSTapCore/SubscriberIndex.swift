import ALSTapALS
import ALSTapFilter

/// Sinks whose filter pins a workload or a namespace (`workload=`, `destination=workload/…`,
/// `ns=`, `destination_ns=`, ...), found by the values of each entry instead of testing every
/// entry against every filter: with 100 such subscribers an entry meets only the ones that can
/// match it.
///
/// Keys are 64-bit hashes of the field and its bytes (`TapFilter.IndexKey`, no allocation per
/// entry); a collision only makes a subscriber a candidate, and its own filter still decides.
/// Loop-confined.
public final class SubscriberIndex {
    private typealias Field = TapFilter.IndexKey.Field

    /// One indexed sink and the entries of the batch being dispatched that it may want. Slots sit
    /// in one array and the tables hold their positions: marking an entry writes in place, with
    /// no call through the sink and no reference counting.
    private struct Slot {
        var sink: (any TapSink)?
        var candidates: [Int] = []
    }

    private var slots: [Slot] = []
    /// Positions of removed sinks' slots, reused first.
    private var free: [Int] = []
    private var positions: [ObjectIdentifier: Int] = [:]
    private var byDestination: [UInt64: [Int]] = [:]
    private var byEitherSide: [UInt64: [Int]] = [:]
    /// Sinks per field and side, so an entry is hashed only for fields someone indexes.
    private var destinationCounts: [Field: Int] = [:]
    private var eitherCounts: [Field: Int] = [:]
    /// Slots that got candidates in the batch being dispatched.
    private var touched: [Int] = []

    /// True when `sink` can be indexed (single entries, a filter with an index key).
    public static func accepts(_ sink: any TapSink) -> Bool {
        !sink.pairs && sink.filter?.indexKey != nil
    }

    public init() {}

    public var isEmpty: Bool { positions.isEmpty }

    public func add(_ sink: any TapSink) {
        guard let key = sink.filter?.indexKey, positions[ObjectIdentifier(sink)] == nil else { return }
        let position: Int
        if let reused = free.popLast() {
            position = reused
            slots[position] = Slot(sink: sink)
        } else {
            position = slots.count
            slots.append(Slot(sink: sink))
        }
        positions[ObjectIdentifier(sink)] = position
        for hash in key.hashes {
            if key.destinationOnly {
                byDestination[hash, default: []].append(position)
            } else {
                byEitherSide[hash, default: []].append(position)
            }
        }
        if key.destinationOnly {
            destinationCounts[key.field, default: 0] += 1
        } else {
            eitherCounts[key.field, default: 0] += 1
        }
    }

    public func remove(_ sink: any TapSink) {
        guard let key = sink.filter?.indexKey, let position = positions.removeValue(forKey: ObjectIdentifier(sink))
        else { return }
        for table in [\SubscriberIndex.byDestination, \SubscriberIndex.byEitherSide] {
            for (hash, list) in self[keyPath: table] where list.contains(position) {
                let rest = list.filter { $0 != position }
                self[keyPath: table][hash] = rest.isEmpty ? nil : rest
            }
        }
        slots[position] = Slot()
        free.append(position)
        if key.destinationOnly {
            destinationCounts[key.field, default: 1] -= 1
        } else {
            eitherCounts[key.field, default: 1] -= 1
        }
    }

    /// Offers each indexed sink the entries of `batch` whose values it asks for.
    public func dispatch(_ batch: EncodedBatch) {
        guard let table = batch.facts, table.stride == 1 else { return }
        for field in Field.allCases {
            let destinationSide = destinationCounts[field, default: 0] > 0
            let eitherSide = eitherCounts[field, default: 0] > 0
            guard destinationSide || eitherSide else { continue }
            for index in 0..<batch.entryCount {
                let (source, destination) = TapFilter.IndexKey.hashes(
                    field, table.facts[index], in: table, withSource: eitherSide)
                if let destination {
                    if destinationSide, let list = byDestination[destination] { mark(list, index) }
                    if eitherSide, let list = byEitherSide[destination] { mark(list, index) }
                }
                if eitherSide, let source, let list = byEitherSide[source] { mark(list, index) }
            }
        }
        for position in touched {
            slots[position].sink?.offer(batch, candidates: slots[position].candidates)
            slots[position].candidates.removeAll(keepingCapacity: true)
        }
        touched.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    private func mark(_ list: [Int], _ index: Int) {
        for position in list where slots[position].candidates.last != index {
            if slots[position].candidates.isEmpty { touched.append(position) }
            slots[position].candidates.append(index)
        }
    }
}
