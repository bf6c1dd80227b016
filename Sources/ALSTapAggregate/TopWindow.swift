#if canImport(Glibc)
import Glibc
#endif
import ALSTapALS
import ALSTapFilter
import ALSTapFormats
import ALSTapMetrics

/// What a group (or one second of it) adds up.
struct Measures {
    var requests = 0
    var errors = 0
    var bytesReceived: UInt64 = 0
    var bytesSent: UInt64 = 0
    var latency = LatencySketch()
    var overhead = LatencySketch()
    /// Exact maxima (seconds keep theirs; a window takes the largest of its seconds').
    var maxMicros: Int64 = -1
    var maxOverheadMicros: Int64 = Int64.min
    /// Response flag field number → entries with it.
    var flags: [UInt8: Int] = [:]

    mutating func add(_ other: Measures) {
        requests += other.requests
        errors += other.errors
        bytesReceived &+= other.bytesReceived
        bytesSent &+= other.bytesSent
        latency.add(other.latency)
        overhead.add(other.overhead)
        maxMicros = max(maxMicros, other.maxMicros)
        maxOverheadMicros = max(maxOverheadMicros, other.maxOverheadMicros)
        for (flag, count) in other.flags { flags[flag, default: 0] += count }
    }

    /// Takes out a second that leaves the window (maxima are recomputed from the seconds left).
    mutating func subtract(_ other: Measures) {
        requests -= other.requests
        errors -= other.errors
        bytesReceived &-= other.bytesReceived
        bytesSent &-= other.bytesSent
        latency.subtract(other.latency)
        overhead.subtract(other.overhead)
        for (flag, count) in other.flags {
            let left = flags[flag, default: 0] - count
            flags[flag] = left > 0 ? left : nil
        }
    }

    /// Memory its sketches and flags hold beyond the struct (what `add` reports the growth of).
    var heldBytes: Int { latency.bytes + overhead.bytes + flags.count * 16 }

    /// Adds one entry; returns the bytes its sketches and flags grew by (0 almost always).
    @discardableResult
    mutating func add(_ sample: Sample) -> Int {
        requests += 1
        if sample.error { errors += 1 }
        bytesReceived &+= sample.bytesReceived
        bytesSent &+= sample.bytesSent
        var grown = 0
        if sample.durationMicros >= 0 {
            grown += latency.add(bucket: sample.latencyBucket)
            maxMicros = max(maxMicros, sample.durationMicros)
        }
        if let overhead = sample.overheadMicros {
            grown += self.overhead.add(bucket: sample.overheadBucket)
            maxOverheadMicros = max(maxOverheadMicros, overhead)
        }
        var bits = sample.flags
        while bits != 0 {
            let bit = UInt8(bits.trailingZeroBitCount)
            let before = flags.count
            flags[bit + 1, default: 0] += 1
            grown += (flags.count - before) * 16
            bits &= bits - 1
        }
        return grown
    }
}

/// One entry's contribution, computed once (its sketch buckets too) and added to its group's
/// second and to the group's totals.
struct Sample {
    var error = false
    var bytesReceived: UInt64 = 0
    var bytesSent: UInt64 = 0
    var durationMicros: Int64 = -1
    var latencyBucket = 0
    var overheadMicros: Int64?
    var overheadBucket = 0
    var flags: UInt32 = 0
}

/// The bytes every `/top` aggregate of the process may hold together (shared across loops).
public final class TopBudget: Sendable {
    public let limit: Int
    private let used = AtomicCounter()

    public init(limit: Int) { self.limit = limit }

    public var usedBytes: Int { used.value }
    var isExhausted: Bool { used.value > limit }
    func charge(_ bytes: Int) { used.add(bytes) }
}

/// Exact counts over a sliding window of whole seconds, by group, with percentiles from
/// `LatencySketch`es: the logic of `/top`, with no I/O and no clock of its own (every call
/// says what time it is, in monotonic nanoseconds, never going back).
///
/// Each second of the window keeps what each group added in it (an array: a group knows its
/// place in the current second, so an entry costs no lookup there); a group's running totals
/// are the sum of its seconds, so a snapshot reads totals rather than adding seconds up, and a
/// second leaving the window is subtracted. A group with nothing left in the window is freed.
/// Bounds: `maxGroups` groups, and the `budget` all aggregates share (groups, their labels and
/// per-second measures); beyond either, new groups (and groups new to a second) go to one
/// `other` group, counted (`overflowEntries`).
public final class TopWindow {
    public let grouping: TopGrouping
    public let windowSeconds: Int
    public let maxGroups: Int
    public let budget: TopBudget
    /// Longest bytes kept of one label part (a path, an authority); longer is cut.
    public static let maxLabelBytes = 256

    /// What names a group (read when it is made, freed and shown).
    private struct Group {
        let key: [UInt8]
        let hash: UInt64
        let row: TopRow
    }

    /// What every entry of a group touches, in an array of its own: reading it copies no labels.
    private struct GroupState {
        var totals = Measures()
        /// Seconds of the window holding something of this group.
        var seconds = 0
        /// The newest second it has measures in, and their place in that second's arrays.
        var currentSecond: Int64 = -1
        var currentPosition = 0
    }

    private struct Second {
        var second: Int64 = -1
        var groups: [Int32] = []
        var measures: [Measures] = []
        var bytes = 0
    }

    private var index = GroupTable()
    private var groups: [Group?] = []
    /// By group id, as `groups`.
    private var states: [GroupState] = []
    private var freeSlots: [Int32] = []
    private var otherSlot: Int32?
    private var seconds: [Second]
    /// The key of the entry being added.
    private let scratch = ByteWriter(capacity: 1024)
    /// Bytes the groups and the seconds' measures hold (charged to `budget` as they change).
    public private(set) var bytes = 0 {
        didSet { budget.charge(bytes - oldValue) }
    }
    public private(set) var overflowEntries = 0
    /// Where `covered` begins: when the aggregate opened, or earlier when history was counted in.
    private var startedNanos: UInt64
    /// The newest second counted: an entry a window older than it is not counted (its slot
    /// holds newer seconds).
    private var newestSecond: Int64 = -1

    public init(grouping: TopGrouping, windowSeconds: Int, maxGroups: Int, budget: TopBudget, now: UInt64) {
        self.grouping = grouping
        self.windowSeconds = windowSeconds
        self.maxGroups = max(1, maxGroups)
        self.budget = budget
        seconds = Array(repeating: Second(), count: windowSeconds)
        startedNanos = now
    }

    deinit { budget.charge(-bytes) }

    /// The numbers cover traffic from `nanos` on (history counted in from before the aggregate opened).
    public func coverFrom(_ nanos: UInt64) {
        startedNanos = min(startedNanos, nanos)
    }

    public var groupCount: Int { groups.count - freeSlots.count }

    // MARK: Adding entries

    /// Adds entry `i` of `table` (or, with stride 2, pair record `i`) at time `now`.
    public func add(record i: Int, of table: EntryFactsTable, now: UInt64) {
        let f = table.facts[i * table.stride]
        var sample = Sample()
        sample.durationMicros = f.durationMicros
        if f.durationMicros >= 0 { sample.latencyBucket = LatencySketch.bucket(micros: f.durationMicros) }
        sample.flags = f.flags
        sample.error = f.code >= 500 || (f.code == 0 && f.flags != 0)
        sample.bytesReceived = f.bytesReceived
        sample.bytesSent = f.bytesSent
        if table.stride == 2 {
            let inbound = table.facts[i * 2 + 1]
            if f.direction == .outbound && inbound.direction == .inbound && f.durationMicros >= 0
                && inbound.durationMicros >= 0 {
                let overhead = f.durationMicros - inbound.durationMicros
                sample.overheadMicros = overhead
                // A sketch holds durations; an overhead below zero (clock or rounding) counts as 0.
                sample.overheadBucket = LatencySketch.bucket(micros: max(0, overhead))
            }
        }
        scratch.removeAll()
        writeKey(f, table)
        add(sample, label: { label(f, table) }, now: now)
    }

    private func add(_ sample: Sample, label: () -> TopRow, now: UInt64) {
        let second = Int64(now / 1_000_000_000)
        // Times may step back a little (history received on several loops), never by a window.
        guard second > newestSecond - Int64(windowSeconds) else { return }
        newestSecond = max(newestSecond, second)
        let slot = Int(second % Int64(windowSeconds))
        if seconds[slot].second != second { expire(slot, becoming: second) }
        let id = lookup(label: label, second: second)
        let position: Int
        var delta = 0
        if states[Int(id)].currentSecond == second {
            position = states[Int(id)].currentPosition
        } else {
            position = seconds[slot].measures.count
            seconds[slot].groups.append(id)
            seconds[slot].measures.append(Measures())
            states[Int(id)].currentSecond = second
            states[Int(id)].currentPosition = position
            states[Int(id)].seconds += 1
            delta = MemoryLayout<Measures>.stride + MemoryLayout<Int32>.stride
        }
        delta += seconds[slot].measures[position].add(sample)
        seconds[slot].bytes += delta
        // The group's running totals: their sketches' growth is the group's, not the second's.
        let grown = states[Int(id)].totals.add(sample)
        if delta + grown != 0 { bytes += delta + grown }
    }

    /// The entry's group (its key is in `scratch`); `other` (counted) for a new group beyond the
    /// group bound, and for a group not yet in this second beyond the byte bound.
    private func lookup(label: () -> TopRow, second: Int64) -> Int32 {
        let overBytes = budget.isExhausted
        let key = scratch.bytes
        let hash = GroupTable.hash(key)
        let found = index.find(hash: hash) { id in
            groups[Int(id)]!.key.withUnsafeBytes { $0.count == key.count && memcmp($0.baseAddress!, key.baseAddress!, key.count) == 0 }
        }
        if let found {
            guard overBytes && states[Int(found)].currentSecond != second else { return found }
        } else if !overBytes && groupCount < maxGroups {
            let group = Group(key: Array(key), hash: hash, row: label())
            let id = allocate(group)
            index.insert(id, hash: hash)
            bytes += Self.bytes(of: group)
            return id
        }
        overflowEntries += 1
        return other()
    }

    private func other() -> Int32 {
        if let otherSlot { return otherSlot }
        var row = TopRow()
        row.other = true
        let group = Group(key: [], hash: 0, row: row)
        let id = allocate(group)
        otherSlot = id
        bytes += Self.bytes(of: group)
        return id
    }

    /// What a group holds besides its seconds: its slot, key and labels, its index entry (its
    /// running totals' sketches are charged as they grow).
    private static func bytes(of group: Group) -> Int {
        let row = group.row
        let identities = [row.source, row.destination, row.reporter].reduce(0) {
            $0 + ($1.map { $0.name.count + $0.namespace.count + 64 } ?? 0)
        }
        let labels = identities + (row.authority?.count ?? 0) + (row.route?.count ?? 0) + (row.method?.utf8.count ?? 0)
        return MemoryLayout<Group?>.stride + MemoryLayout<GroupState>.stride + group.key.count + labels + 96
    }

    private func allocate(_ group: Group) -> Int32 {
        if let free = freeSlots.popLast() {
            groups[Int(free)] = group
            states[Int(free)] = GroupState()
            return free
        }
        groups.append(group)
        states.append(GroupState())
        return Int32(groups.count - 1)
    }

    /// Empties `slot` for `second`: what it held leaves the groups' totals; groups left empty are freed.
    private func expire(_ slot: Int, becoming second: Int64) {
        let old = seconds[slot]
        seconds[slot] = Second(second: second)
        var delta = -old.bytes
        for (id, measures) in zip(old.groups, old.measures) {
            let held = states[Int(id)].totals.heldBytes
            states[Int(id)].totals.subtract(measures)
            delta += states[Int(id)].totals.heldBytes - held
            states[Int(id)].seconds -= 1
            if states[Int(id)].seconds == 0 { delta -= free(id) }
        }
        if delta != 0 { bytes += delta }
    }

    /// Frees a group; returns the bytes it held.
    private func free(_ id: Int32) -> Int {
        let held = Self.bytes(of: groups[Int(id)]!)
        if id == otherSlot {
            otherSlot = nil
        } else {
            index.remove(id, hash: groups[Int(id)]!.hash)
        }
        groups[Int(id)] = nil
        states[Int(id)] = GroupState()
        freeSlots.append(id)
        return held
    }

    /// Seconds that have left the window by `now` are expired (before a snapshot).
    public func advance(now: UInt64) {
        let second = Int64(now / 1_000_000_000)
        for slot in 0..<windowSeconds where seconds[slot].second >= 0 && seconds[slot].second <= second - Int64(windowSeconds) {
            expire(slot, becoming: -1)
        }
    }

    // MARK: Snapshots

    /// The window at `now`: totals and rows, most requests first (ties by label), at most `limit` (0: all).
    public func snapshot(now: UInt64, wallMicros: Int64, limit: Int = 0, lostEntries: Int = 0) -> TopSnapshot {
        advance(now: now)
        let covered = coveredSeconds(now: now)
        // Maxima cannot be subtracted: the window's are the largest of its seconds'.
        var maxima: [Int32: (latency: Int64, overhead: Int64)] = [:]
        for second in seconds where second.second >= 0 {
            for (id, measures) in zip(second.groups, second.measures) {
                let held = maxima[id] ?? (-1, Int64.min)
                maxima[id] = (max(held.latency, measures.maxMicros), max(held.overhead, measures.maxOverheadMicros))
            }
        }
        var rows: [TopRow] = []
        rows.reserveCapacity(groupCount)
        var totals = Measures()
        for (id, group) in groups.enumerated() {
            guard let group else { continue }
            var measures = states[id].totals
            (measures.maxMicros, measures.maxOverheadMicros) = maxima[Int32(id)] ?? (-1, Int64.min)
            totals.add(measures)
            rows.append(Self.row(group.row, measures, covered: covered))
        }
        // Most requests first; ties by label (each built once, not per comparison), `other` last.
        let labels = rows.map { $0.other ? "" : TopSnapshot.label($0) }
        let order = rows.indices.sorted { a, b in
            if rows[a].requests != rows[b].requests { return rows[a].requests > rows[b].requests }
            if rows[a].other != rows[b].other { return rows[b].other }
            return labels[a] < labels[b]
        }
        rows = order.map { rows[$0] }
        let groupCount = rows.count
        if limit > 0 && rows.count > limit { rows.removeLast(rows.count - limit) }
        return TopSnapshot(timeMicros: wallMicros, by: grouping.rawValue, windowSeconds: windowSeconds,
                           coveredSeconds: covered, totals: Self.row(TopRow(), totals, covered: covered),
                           rows: rows, groups: groupCount, overflowEntries: overflowEntries, lostEntries: lostEntries)
    }

    /// The time the window spans at `now`: its whole seconds before this one and the part of
    /// this one gone, or less while the aggregate is younger than that.
    func coveredSeconds(now: UInt64) -> Double {
        let intoSecond = Double(now % 1_000_000_000) / 1e9
        let span = Double(windowSeconds - 1) + intoSecond
        let age = Double(now &- startedNanos) / 1e9
        return max(0.001, min(span, age))
    }

    private static func row(_ label: TopRow, _ m: Measures, covered: Double) -> TopRow {
        var row = label
        row.requests = m.requests
        row.errors = m.errors
        row.rps = Double(m.requests) / covered
        row.bytesReceived = m.bytesReceived
        row.bytesSent = m.bytesSent
        row.latencyMs = percentiles(m.latency, max: m.maxMicros)
        if !m.overhead.isEmpty { row.overheadMs = percentiles(m.overhead, max: max(0, m.maxOverheadMicros)) }
        row.flags = m.flags.sorted { $0.key < $1.key }.map { (ResponseFlagCodes.code(fieldNumber: Int($0.key)) ?? "?", $0.value) }
        return row
    }

    /// p50, p90, p99 from the sketch (never above the exact maximum) and the maximum, in ms.
    private static func percentiles(_ sketch: LatencySketch, max: Int64) -> TopPercentiles? {
        guard !sketch.isEmpty, max >= 0 else { return nil }
        let top = Double(max)
        func q(_ p: Double) -> Double { Swift.min(sketch.quantile(p) ?? 0, top) / 1000 }
        return TopPercentiles(p50: q(0.5), p90: q(0.9), p99: q(0.99), max: top / 1000)
    }

    // MARK: Keys and labels

    /// The group key of an entry for this grouping, into `scratch`.
    private func writeKey(_ f: EntryFacts, _ t: EntryFactsTable) {
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
    private func label(_ f: EntryFacts, _ t: EntryFactsTable) -> TopRow {
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
