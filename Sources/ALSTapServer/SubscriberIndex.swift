import ALSTapALS
import ALSTapFilter

/// Subscribers whose filter pins a workload or a namespace (`workload=`, `destination=workload/…`,
/// `ns=`, `destination_ns=`, ...), found by the values of each entry instead of testing every
/// entry against every filter: with 100 such subscribers an entry meets only the ones that can
/// match it.
///
/// Keys are 64-bit hashes of the field and its bytes (`TapFilter.IndexKey`, no allocation per
/// entry); a collision only makes a subscriber a candidate, and its own filter still decides.
/// Loop-confined.
final class SubscriberIndex {
    private typealias Field = TapFilter.IndexKey.Field

    private var byDestination: [UInt64: [Subscriber]] = [:]
    private var byEitherSide: [UInt64: [Subscriber]] = [:]
    /// Subscribers per field and side, so an entry is hashed only for fields someone indexes.
    private var destinationCounts: [Field: Int] = [:]
    private var eitherCounts: [Field: Int] = [:]
    /// Subscribers that got candidates in the batch being dispatched.
    private var touched: [Subscriber] = []

    /// True when `subscriber` can be indexed (single entries, a filter with an index key).
    static func accepts(_ subscriber: Subscriber) -> Bool {
        !subscriber.pairs && subscriber.filter?.indexKey != nil
    }

    var isEmpty: Bool { byDestination.isEmpty && byEitherSide.isEmpty }

    func add(_ subscriber: Subscriber) {
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

    func remove(_ subscriber: Subscriber) {
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
    func dispatch(_ batch: EncodedBatch) {
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
    private func mark(_ subscribers: [Subscriber], _ index: Int) {
        for subscriber in subscribers where subscriber.candidates.last != index {
            if subscriber.candidates.isEmpty { touched.append(subscriber) }
            subscriber.candidates.append(index)
        }
    }
}
