/// Group ids by the hash of their key: open addressing with linear probing, keys compared by
/// the caller (against the bytes it keeps), so a lookup allocates nothing.
///
/// Hashes come from Swift's `Hasher` (SipHash, seeded per process): traffic cannot choose keys
/// that collide, so probes stay short however hostile the workload and path names are.
struct GroupTable {
    private static let empty: Int32 = -1
    private static let removed: Int32 = -2
    private var ids: [Int32] = Array(repeating: -1, count: 64)
    private var hashes: [UInt64] = Array(repeating: 0, count: 64)
    private var used = 0
    private var removedSlots = 0

    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(bytes: key)
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// The id whose key `matches`, if any.
    func find(hash: UInt64, matches: (Int32) -> Bool) -> Int32? {
        let mask = ids.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let id = ids[slot]
            if id == Self.empty { return nil }
            if id >= 0 && hashes[slot] == hash && matches(id) { return id }
            slot = (slot + 1) & mask
        }
    }

    /// Adds `id` (not present) under `hash`.
    mutating func insert(_ id: Int32, hash: UInt64) {
        if (used + removedSlots + 1) * 4 > ids.count * 3 { rehash(capacity: used * 2 >= ids.count ? ids.count * 2 : ids.count) }
        let mask = ids.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while ids[slot] >= 0 { slot = (slot + 1) & mask }
        if ids[slot] == Self.removed { removedSlots -= 1 }
        ids[slot] = id
        hashes[slot] = hash
        used += 1
    }

    /// Takes `id` (present under `hash`) out.
    mutating func remove(_ id: Int32, hash: UInt64) {
        let mask = ids.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while ids[slot] != id {
            precondition(ids[slot] != Self.empty, "removing an id that is not in the table")
            slot = (slot + 1) & mask
        }
        ids[slot] = Self.removed
        used -= 1
        removedSlots += 1
    }

    private mutating func rehash(capacity: Int) {
        let old = zip(ids, hashes).filter { $0.0 >= 0 }
        ids = Array(repeating: Self.empty, count: capacity)
        hashes = Array(repeating: 0, count: capacity)
        used = 0
        removedSlots = 0
        for (id, hash) in old { insert(id, hash: hash) }
    }

    var bytes: Int { ids.capacity * 4 + hashes.capacity * 8 }
}
