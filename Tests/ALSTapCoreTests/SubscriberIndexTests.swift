import ALSTapALS
import ALSTapCore
import ALSTapFilter
import ALSTapTestSupport
import PropertyBased
import Testing

/// The subscriber index only narrows: every sink gets, through it, exactly the entries its
/// filter would take from a full scan.
@Suite struct SubscriberIndexTests {
    static let names = ["a", "b", "c"]
    static let queries = ["ns=a", "ns=b", "workload=a/w-b", "destination=workload/w-c", "destination_ns=a",
                          "destination_ns=b&destination=workload/w-b", "pod=a/p", "ns=a&workload=w-b", "ns=c&method=POST",
                          "workload=w-a", "destination=ns/b", "ns=a,b", "workload=w-a&workload=w-c"]

    /// An entry as one number: source and destination namespace, destination workload (3: none),
    /// POST or GET, known by its service name only.
    static let entryShapes = Gen.int(in: 0...(3 * 3 * 4 * 2 * 2 - 1)).array(of: 1...20)

    @Test func theIndexAgreesWithAFullScan() async {
        await propertyCheck(count: 300, input: Self.entryShapes, Gen.int(in: 0...(Self.queries.count - 1)).array(of: 1...6)) {
            shapes, picks in
            let batchEntries = shapes.map { shape in
                let (from, to, workload) = (shape % 3, shape / 3 % 3, shape / 9 % 4)
                let (post, serviceOnly) = (shape / 36 % 2 == 1, shape / 72 == 1)
                var e = TestEntry(.outbound, method: post ? "POST" : "GET", sourceNamespace: Self.names[from],
                                  sourceWorkload: "w-" + Self.names[from], destinationNamespace: Self.names[to],
                                  destinationWorkload: workload == 3 ? "" : "w-" + Self.names[workload])
                if serviceOnly || workload == 3 { e.destinationService = "w-" + Self.names[to] }
                e.sourcePod = "p"
                return e
            }
            let batch = makeBatch(batchEntries)
            let taps = hub()
            let indexed = picks.map { CountingSink(Self.queries[$0]) }
            for sink in indexed { #expect(taps.add(sink)) }
            taps.deliver([batch], dropped: 0, now: 0)
            for (sink, pick) in zip(indexed, picks) {
                let filter = query(Self.queries[pick]).filter!
                let expected = batch.facts!.facts.filter { filter.matches($0, in: batch.facts!) }.count
                #expect(sink.seen == expected, "\(Self.queries[pick])")
            }
        }
    }

    @Test func indexedSinksAreOfferedOnlyCandidates() {
        let index = SubscriberIndex()
        let sink = CountingSink("ns=a")
        #expect(SubscriberIndex.accepts(sink))
        #expect(!SubscriberIndex.accepts(CountingSink("method=GET")), "no index key")
        index.add(sink)
        index.dispatch(makeBatch(entries(3, from: "x", to: "y") + entries(2, from: "a", to: "y")))
        #expect(sink.seen == 2)
        index.remove(sink)
        #expect(index.isEmpty)
        index.dispatch(makeBatch(entries(3, from: "a", to: "a")))
        #expect(sink.seen == 2, "removed: offered nothing")
    }

    @Test func aRemovedSinksPlaceIsTakenByTheNextWithoutMixingUp() {
        let index = SubscriberIndex()
        let a = CountingSink("ns=a")
        let b = CountingSink("ns=b")
        index.add(a)
        index.add(b)
        index.remove(a)
        let c = CountingSink("ns=c")
        index.add(c)
        index.add(c)  // twice: once
        index.dispatch(makeBatch(entries(2, from: "a", to: "x") + entries(3, from: "b", to: "x") + entries(4, from: "c", to: "x")))
        #expect(a.seen == 0 && b.seen == 3 && c.seen == 4)
        index.remove(b)
        index.remove(c)
        #expect(index.isEmpty)
    }
}
