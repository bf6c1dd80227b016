import Testing

@testable import ALSTapAggregate

/// The group table finds what was put in, under colliding hashes, through removals and growth.
@Suite struct GroupTableTests {
    @Test func collidingHashesRemovalsAndGrowth() {
        var table = GroupTable()
        var present = Set<Int32>()
        func hash(_ id: Int32) -> UInt64 { UInt64(id % 7) }  // every id collides with a seventh of the others
        for id in Int32(0)..<1_000 {
            table.insert(id, hash: hash(id))
            present.insert(id)
        }
        for id in Int32(0)..<1_000 where id % 3 == 0 {
            table.remove(id, hash: hash(id))
            present.remove(id)
        }
        for id in Int32(0)..<1_200 {
            let found = table.find(hash: hash(id)) { $0 == id }
            #expect((found != nil) == present.contains(id), "id \(id)")
        }
    }

    @Test func churnNeverFillsTheTableWithRemovedSlots() {
        var table = GroupTable()
        for round in 0..<10_000 {
            let id = Int32(round % 50)
            if round >= 50 { table.remove(id, hash: UInt64(round - 50)) }
            table.insert(id, hash: UInt64(round))
        }
        #expect(table.find(hash: 9_999) { $0 == 49 } == 49)
        #expect(table.find(hash: 9_949) { $0 == 49 } == nil, "a removed entry is gone")
        #expect(table.bytes < 64 * 12 * 4, "50 live ids keep a small table: \(table.bytes)")
    }
}
