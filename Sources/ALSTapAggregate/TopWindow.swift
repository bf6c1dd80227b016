import ALSTapALS
import ALSTapFilter
import ALSTapFormats
import ALSTapMetrics

/// A group's bytes as a dictionary key, hashed in one call (not byte by byte).
struct GroupKey: Hashable {
    var bytes: [UInt8]

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

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
        for (flag, count) in other.flags { flags[flag, default: 0] += count }
    }

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

    /// Memory the sketches hold, for the aggregate's byte bound.
    var bytes: Int { MemoryLayout<Measures>.stride + latency.bytes + overhead.bytes + flags.count * 16 }
}

/// One entry's contribution, computed once and added to its group's second.
struct Sample {
    var error = false
    var bytesReceived: UInt64 = 0
    var bytesSent: UInt64 = 0
    var durationMicros: Int64 = -1
    var overheadMicros: Int64?
    var flags: UInt32 = 0
}

extension Measures {
    mutating func add(_ sample: Sample) {
        requests += 1
        if sample.error { errors += 1 }
        bytesReceived &+= sample.bytesReceived
        bytesSent &+= sample.bytesSent
        if sample.durationMicros >= 0 {
            latency.add(micros: sample.durationMicros)
            maxMicros = max(maxMicros, sample.durationMicros)
        }
        if let overhead = sample.overheadMicros {
            // A sketch holds durations; an overhead below zero (clock or rounding) counts as 0.
            self.overhead.add(micros: max(0, overhead))
            maxOverheadMicros = max(maxOverheadMicros, overhead)
        }
        var bits = sample.flags
        while bits != 0 {
            let bit = UInt8(bits.trailingZeroBitCount)
            flags[bit + 1, default: 0] += 1
            bits &= bits - 1
        }
    }
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
/// says what time it is, in monotonic nanoseconds).
///
/// Each second of the window keeps what each group added in it; a group's running totals are
/// the sum of its seconds, so a snapshot reads totals rather than adding seconds up, and a
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

    private struct Group {
        let key: GroupKey
        let row: TopRow
        var totals = Measures()
        /// Seconds of the window holding something of this group.
        var seconds = 0
    }

    private struct Second {
        var second: Int64 = -1
        var groups: [Int32: Measures] = [:]
        var totals = Measures()
        var bytes = 0
    }

    private var index: [GroupKey: Int32] = [:]
    private var groups: [Group?] = []
    private var freeSlots: [Int32] = []
    private var otherSlot: Int32?
    private var seconds: [Second]
    private var totals = Measures()
    private var scratch: [UInt8] = []
    /// Bytes the groups and the seconds' measures hold (charged to `budget` as they change).
    public private(set) var bytes = 0 {
        didSet { budget.charge(bytes - oldValue) }
    }
    public private(set) var overflowEntries = 0
    private let startedNanos: UInt64

    public init(grouping: TopGrouping, windowSeconds: Int, maxGroups: Int, budget: TopBudget, now: UInt64) {
        self.grouping = grouping
        self.windowSeconds = windowSeconds
        self.maxGroups = max(1, maxGroups)
        self.budget = budget
        seconds = Array(repeating: Second(), count: windowSeconds)
        startedNanos = now
    }

    deinit { budget.charge(-bytes) }

    public var groupCount: Int { groups.count - freeSlots.count }

    // MARK: Adding entries

    /// Adds entry `i` of `table` (or, with stride 2, pair record `i`) at time `now`.
    public func add(record i: Int, of table: EntryFactsTable, now: UInt64) {
        let f = table.facts[i * table.stride]
        var sample = Sample()
        sample.durationMicros = f.durationMicros
        sample.flags = f.flags
        sample.error = f.code >= 500 || (f.code == 0 && f.flags != 0)
        sample.bytesReceived = f.bytesReceived
        sample.bytesSent = f.bytesSent
        if table.stride == 2 {
            let inbound = table.facts[i * 2 + 1]
            if f.direction == .outbound && inbound.direction == .inbound && f.durationMicros >= 0
                && inbound.durationMicros >= 0 {
                sample.overheadMicros = f.durationMicros - inbound.durationMicros
            }
        }
        add(sample, key: { writeKey(f, table) }, label: { label(f, table) }, now: now)
    }

    private func add(_ sample: Sample, key: () -> Void, label: () -> TopRow, now: UInt64) {
        let second = Int64(now / 1_000_000_000)
        let slot = Int(second % Int64(windowSeconds))
        if seconds[slot].second != second { expire(slot, becoming: second) }
        scratch.removeAll(keepingCapacity: true)
        key()
        let group = lookup(label: label, slot: slot)
        let before = seconds[slot].groups[group]?.bytes ?? 0
        if before == 0 { groups[Int(group)]!.seconds += 1 }
        seconds[slot].groups[group, default: Measures()].add(sample)
        let after = seconds[slot].groups[group]!.bytes
        if after != before {
            seconds[slot].bytes += after - before
            bytes += after - before
        }
        seconds[slot].totals.add(sample)
        let totalsBefore = groups[Int(group)]!.totals.latency.bytes + groups[Int(group)]!.totals.overhead.bytes
        groups[Int(group)]!.totals.add(sample)
        let totalsAfter = groups[Int(group)]!.totals.latency.bytes + groups[Int(group)]!.totals.overhead.bytes
        if totalsAfter != totalsBefore { bytes += totalsAfter - totalsBefore }
        totals.add(sample)
    }

    /// The entry's group; `other` (counted) for a new group beyond the group bound, and for a
    /// group not yet in this second beyond the byte bound.
    private func lookup(label: () -> TopRow, slot: Int) -> Int32 {
        let overBytes = budget.isExhausted
        if let found = index[GroupKey(bytes: scratch)] {
            guard overBytes && seconds[slot].groups[found] == nil else { return found }
        } else if !overBytes && groupCount < maxGroups {
            let key = GroupKey(bytes: scratch)
            let group = Group(key: key, row: label())
            let id = allocate(group)
            index[key] = id
            bytes += Self.bytes(of: group)
            return id
        }
        overflowEntries += 1
        return other(slot: slot)
    }

    private func other(slot: Int) -> Int32 {
        if let otherSlot { return otherSlot }
        var row = TopRow()
        row.other = true
        let group = Group(key: GroupKey(bytes: []), row: row)
        let id = allocate(group)
        otherSlot = id
        bytes += Self.bytes(of: group)
        return id
    }

    /// What a group holds besides its seconds: its slot, key and labels, its index entry, and
    /// its running totals' sketches (charged as they grow, with its seconds').
    private static func bytes(of group: Group) -> Int {
        let row = group.row
        let labels = [row.source, row.destination, row.reporter].reduce(0) { $0 + ($1.map { $0.name.count + $0.namespace.count + 64 } ?? 0) }
            + (row.authority?.count ?? 0) + (row.route?.count ?? 0) + (row.method?.utf8.count ?? 0)
        return MemoryLayout<Group?>.stride + 2 * group.key.bytes.count + labels + 96
    }

    private func allocate(_ group: Group) -> Int32 {
        if let free = freeSlots.popLast() {
            groups[Int(free)] = group
            return free
        }
        groups.append(group)
        return Int32(groups.count - 1)
    }

    /// Empties `slot` for `second`: what it held leaves the totals; groups left empty are freed.
    private func expire(_ slot: Int, becoming second: Int64) {
        let old = seconds[slot]
        seconds[slot] = Second(second: second)
        bytes -= old.bytes
        totals.subtract(old.totals)
        for (id, measures) in old.groups {
            let sketches = groups[Int(id)]!.totals.latency.bytes + groups[Int(id)]!.totals.overhead.bytes
            groups[Int(id)]!.totals.subtract(measures)
            bytes += groups[Int(id)]!.totals.latency.bytes + groups[Int(id)]!.totals.overhead.bytes - sketches
            groups[Int(id)]!.seconds -= 1
            if groups[Int(id)]!.seconds == 0 { free(id) }
        }
    }

    private func free(_ id: Int32) {
        bytes -= Self.bytes(of: groups[Int(id)]!)
        if id == otherSlot {
            otherSlot = nil
        } else {
            index[groups[Int(id)]!.key] = nil
        }
        groups[Int(id)] = nil
        freeSlots.append(id)
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
        var maxima: [Int32: (latency: Int64, overhead: Int64)] = [:]
        var totalMax: Int64 = -1
        var totalOverheadMax = Int64.min
        for second in seconds where second.second >= 0 {
            totalMax = max(totalMax, second.totals.maxMicros)
            totalOverheadMax = max(totalOverheadMax, second.totals.maxOverheadMicros)
            for (id, measures) in second.groups {
                let held = maxima[id] ?? (-1, Int64.min)
                maxima[id] = (max(held.latency, measures.maxMicros), max(held.overhead, measures.maxOverheadMicros))
            }
        }
        var rows: [TopRow] = []
        rows.reserveCapacity(groupCount)
        for (id, group) in groups.enumerated() {
            guard let group else { continue }
            let held = maxima[Int32(id)] ?? (-1, Int64.min)
            rows.append(Self.row(group.row, group.totals, maxMicros: held.latency, maxOverhead: held.overhead, covered: covered))
        }
        rows.sort { a, b in
            if a.requests != b.requests { return a.requests > b.requests }
            if a.other != b.other { return b.other }
            return TopSnapshot.label(a) < TopSnapshot.label(b)
        }
        let groupCount = rows.count
        if limit > 0 && rows.count > limit { rows.removeLast(rows.count - limit) }
        return TopSnapshot(timeMicros: wallMicros, by: grouping.rawValue, windowSeconds: windowSeconds,
                           coveredSeconds: covered,
                           totals: Self.row(TopRow(), totals, maxMicros: totalMax, maxOverhead: totalOverheadMax, covered: covered),
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

    private static func row(_ label: TopRow, _ m: Measures, maxMicros: Int64, maxOverhead: Int64, covered: Double) -> TopRow {
        var row = label
        row.requests = m.requests
        row.errors = m.errors
        row.rps = Double(m.requests) / covered
        row.bytesReceived = m.bytesReceived
        row.bytesSent = m.bytesSent
        row.latencyMs = percentiles(m.latency, max: maxMicros)
        if !m.overhead.isEmpty { row.overheadMs = percentiles(m.overhead, max: max(0, maxOverhead)) }
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
                writePart(RouteFolding.fold(t.bytes(f.path)))
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
        let cut = UnsafeRawBufferPointer(rebasing: bytes[0..<min(bytes.count, Self.maxLabelBytes)])
        scratch.append(UInt8(cut.count & 0xff))
        scratch.append(UInt8(cut.count >> 8))
        scratch.append(contentsOf: cut)
    }

    private func writePart(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { writePart($0) }
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
