import ALSTapALS
import ALSTapFormats
import ALSTapMetrics

/// Joins the outbound entry of a request (source sidecar) with its inbound twin (destination
/// sidecar) into one record, by x-request-id, confirmed by the connection both saw.
///
/// No I/O, no clock of its own (`now` comes with every call). Each loop with `pair=1` subscribers
/// runs one, fed with every batch its inbox delivers (which is every batch of every loop). Halves arrive in any order; retries give one
/// outbound and several inbound entries. A half alone when its window ends is emitted alone.
public final class Pairer {
    /// One entry: its batch (kept alive while waiting) and its index there.
    private typealias Half = EntryRef

    private struct Pending {
        var outbound: Half?
        var inbound: [Half] = []
        let firstSeenNanos: UInt64
    }

    private let windowNanos: UInt64
    private let capacity: Int
    /// Bytes of batches the waiting halves may keep alive (a half holds its whole batch).
    private let capacityBytes: Int
    /// Inbound attempts kept per request; more come out alone (a flood of one request id).
    public static let maxAttempts = 16
    private let counters: Counters
    private var pending: [[UInt8]: Pending] = [:]
    /// The batches waiting halves hold, each counted once: halves held, bytes.
    private var pinned: [ObjectIdentifier: (halves: Int, bytes: Int)] = [:]
    public private(set) var pinnedBytes = 0
    private let writer = PairRecordWriter()

    public init(windowNanos: UInt64, capacity: Int, capacityBytes: Int = .max, counters: Counters) {
        self.windowNanos = windowNanos
        self.capacity = capacity
        self.capacityBytes = capacityBytes
        self.counters = counters
    }

    private static func key(_ half: Half) -> ObjectIdentifier { ObjectIdentifier(half.batch.json!.bytes) }

    /// Would holding `half` keep the pinned bytes within the bound?
    private func fits(_ half: Half) -> Bool {
        pinned[Self.key(half)] != nil || pinnedBytes + half.batch.encodedBytes <= capacityBytes
    }

    private func pin(_ half: Half) {
        let key = Self.key(half)
        if let held = pinned[key] {
            pinned[key] = (held.halves + 1, held.bytes)
        } else {
            let bytes = half.batch.encodedBytes
            pinned[key] = (1, bytes)
            pinnedBytes += bytes
        }
    }

    private func unpin(_ half: Half) {
        let key = Self.key(half)
        guard let held = pinned[key] else { return }
        if held.halves > 1 {
            pinned[key] = (held.halves - 1, held.bytes)
        } else {
            pinned[key] = nil
            pinnedBytes -= held.bytes
        }
    }

    private func unpin(_ entry: Pending) {
        if let outbound = entry.outbound { unpin(outbound) }
        for half in entry.inbound { unpin(half) }
    }

    /// Takes a live batch (it must carry facts and JSON); returns the records ready now.
    public func add(_ batch: EncodedBatch, now: UInt64) -> EncodedBatch? {
        guard let table = batch.facts, batch.json != nil else { return nil }
        for index in 0..<batch.entryCount {
            let half = Half(batch: batch, index: index)
            let f = table.facts[index]
            let id = table.bytes(f.requestId)
            guard !batch.isTCP, !id.isEmpty, f.direction != .unknown else {
                writer.write(outbound: f.direction == .inbound ? nil : half, inbound: f.direction == .inbound ? [half] : [])
                continue
            }
            let key = Array(id)
            var entry = pending[key] ?? Pending(firstSeenNanos: now)
            let full = (pending[key] == nil && pending.count >= capacity) || !fits(half)
                || (f.direction == .inbound && entry.inbound.count >= Self.maxAttempts)
            if full {
                counters.add(.pairTableFull)
                writer.write(outbound: f.direction == .outbound ? half : nil, inbound: f.direction == .inbound ? [half] : [])
                continue
            }
            if f.direction == .outbound {
                if let earlier = entry.outbound {
                    unpin(earlier)
                    writer.write(outbound: earlier, inbound: [])
                }
                entry.outbound = half
            } else {
                entry.inbound.append(half)
            }
            pin(half)
            if let outbound = entry.outbound, let final = confirmed(outbound, entry.inbound) {
                var attempts = entry.inbound
                attempts.remove(at: final)
                unpin(entry)
                writer.write(outbound: outbound, inbound: [entry.inbound[final]] + attempts)
                pending[key] = nil
            } else {
                pending[key] = entry
            }
        }
        return writer.finish(decodedAtNanos: now)
    }

    /// Emits the halves whose window ended (`all`: every waiting half); returns them, if any.
    public func expire(now: UInt64, all: Bool = false) -> EncodedBatch? {
        for (key, entry) in pending where all || now &- entry.firstSeenNanos >= windowNanos {
            pending[key] = nil
            unpin(entry)
            // Same request id on both sides but no connection confirmed it: still one request.
            writer.write(outbound: entry.outbound, inbound: entry.inbound.reversed())
        }
        return writer.finish(decodedAtNanos: now)
    }

    /// The inbound entry that the outbound one's connection confirms (the last attempt), or, when
    /// either side logged no addresses, the latest inbound one.
    private func confirmed(_ outbound: Half, _ inbound: [Half]) -> Int? {
        guard !inbound.isEmpty else { return nil }
        let o = outbound.facts
        let table = outbound.batch.facts!
        if o.linkFrom.length == 0 || o.linkTo.length == 0 { return inbound.count - 1 }
        for (i, half) in inbound.enumerated().reversed() {
            let f = half.facts
            let other = half.batch.facts!
            if f.linkFrom.length == 0 || f.linkTo.length == 0 { return i }
            if table.bytes(o.linkFrom).elementsEqual(other.bytes(f.linkFrom))
                && table.bytes(o.linkTo).elementsEqual(other.bytes(f.linkTo)) {
                return i
            }
        }
        return nil
    }
}
