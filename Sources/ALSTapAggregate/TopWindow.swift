#if canImport(Glibc)
import Glibc
#endif
import ALSTapALS
import ALSTapFilter
import ALSTapFormats
import ALSTapMetrics

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
    /// The key of the entry being added (written by `writeKey`).
    let scratch = ByteWriter(capacity: 1024)
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
}
