import ALSTapALS
import ALSTapFilter

/// Subscribers whose filter pins a namespace (`ns=`, `destination_ns=`, `workload=NS/NAME`, ...),
/// found by the namespaces of each entry instead of testing every entry against every filter:
/// with 100 such subscribers an entry meets only the one or two that can match it.
///
/// Keys are 64-bit hashes of the namespace bytes (no allocation per entry); a collision only
/// makes a subscriber a candidate, and its own filter still decides. Loop-confined.
final class SubscriberIndex {
    private var byDestination: [UInt64: [Subscriber]] = [:]
    private var byEitherSide: [UInt64: [Subscriber]] = [:]
    /// Subscribers that got candidates in the batch being dispatched.
    private var touched: [Subscriber] = []

    /// True when `subscriber` can be indexed (single entries with a namespace-pinning filter).
    static func accepts(_ subscriber: Subscriber) -> Bool {
        !subscriber.pairs && subscriber.filter?.namespaceKey != nil
    }

    var isEmpty: Bool { byDestination.isEmpty && byEitherSide.isEmpty }

    func add(_ subscriber: Subscriber) {
        guard let key = subscriber.filter?.namespaceKey else { return }
        for namespace in Set(key.namespaces.map(Self.hash)) {
            if key.destinationOnly {
                byDestination[namespace, default: []].append(subscriber)
            } else {
                byEitherSide[namespace, default: []].append(subscriber)
            }
        }
    }

    func remove(_ subscriber: Subscriber) {
        for table in [\SubscriberIndex.byDestination, \SubscriberIndex.byEitherSide] {
            for (key, list) in self[keyPath: table] where list.contains(where: { $0 === subscriber }) {
                let rest = list.filter { $0 !== subscriber }
                self[keyPath: table][key] = rest.isEmpty ? nil : rest
            }
        }
    }

    /// Offers each indexed subscriber the entries of `batch` whose namespaces it asks for.
    func dispatch(_ batch: EncodedBatch) {
        guard let table = batch.facts, table.stride == 1 else { return }
        for index in 0..<batch.entryCount {
            let facts = table.facts[index]
            let destination = table.bytes(facts.destinationNamespace)
            if !destination.isEmpty {
                let key = Self.hash(destination)
                if let list = byDestination[key] { mark(list, index) }
                if let list = byEitherSide[key] { mark(list, index) }
            }
            let source = table.bytes(facts.sourceNamespace)
            if !source.isEmpty, !byEitherSide.isEmpty, let list = byEitherSide[Self.hash(source)] { mark(list, index) }
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

    /// FNV-1a, 64 bits.
    static func hash<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return hash
    }
}
