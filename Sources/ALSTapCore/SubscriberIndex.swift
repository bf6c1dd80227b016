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

    private var byDestination: [UInt64: [any TapSink]] = [:]
    private var byEitherSide: [UInt64: [any TapSink]] = [:]
    /// Subscribers per field and side, so an entry is hashed only for fields someone indexes.
    private var destinationCounts: [Field: Int] = [:]
    private var eitherCounts: [Field: Int] = [:]
    /// Subscribers that got candidates in the batch being dispatched.
    private var touched: [any TapSink] = []

    /// True when `subscriber` can be indexed (single entries, a filter with an index key).
    public static func accepts(_ subscriber: any TapSink) -> Bool {
        !subscriber.pairs && subscriber.filter?.indexKey != nil
    }

    public init() {}

    public var isEmpty: Bool { byDestination.isEmpty && byEitherSide.isEmpty }

    public func add(_ subscriber: any TapSink) {
        guard let key = subscriber.filter?.indexKey else { return }
        for hash in key.hashes {
            if key.destinationOnly {
                byDestination[hash, default: []].append(subscriber)
            } else {
                byEitherSide[hash, default: []].append(subscriber)
            }
        }
        if key.destinationOnly {
            destinationCounts[key.field, default: 0] += 1
        } else {
            eitherCounts[key.field, default: 0] += 1
        }
    }

    public func remove(_ subscriber: any TapSink) {
        guard let key = subscriber.filter?.indexKey else { return }
        for table in [\SubscriberIndex.byDestination, \SubscriberIndex.byEitherSide] {
            for (hash, list) in self[keyPath: table] where list.contains(where: { $0 === subscriber }) {
                let rest = list.filter { $0 !== subscriber }
                self[keyPath: table][hash] = rest.isEmpty ? nil : rest
            }
        }
        if key.destinationOnly {
            destinationCounts[key.field, default: 1] -= 1
        } else {
            eitherCounts[key.field, default: 1] -= 1
        }
    }

    /// Offers each indexed subscriber the entries of `batch` whose values it asks for.
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
        for subscriber in touched {
            subscriber.offer(batch, candidates: subscriber.candidates)
            subscriber.candidates.removeAll(keepingCapacity: true)
        }
        touched.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    private func mark(_ subscribers: [any TapSink], _ index: Int) {
        for subscriber in subscribers where subscriber.candidates.last != index {
            if subscriber.candidates.isEmpty { touched.append(subscriber) }
            subscriber.candidates.append(index)
        }
    }
}
