import ALSTapAggregate
import PropertyBased
import Testing

/// Percentiles within 1 %, sketches that add and subtract exactly, bounded memory.
@Suite struct LatencySketchTests {
    /// The nearest-rank quantile of `values`, exactly.
    static func exact(_ values: [Int64], _ q: Double) -> Double {
        let sorted = values.sorted()
        let rank = max(1, Int((q * Double(sorted.count)).rounded(.up)))
        return Double(sorted[rank - 1])
    }

    @Test func everyQuantileIsWithinOnePercentOfTheExactOne() async {
        let durations = Gen.int64(in: 1...50_000_000).array(of: 1...400)
        await propertyCheck(count: 300, input: durations) { values in
            var sketch = LatencySketch()
            for value in values { sketch.add(micros: value) }
            #expect(sketch.count == values.count)
            for q in [0.01, 0.5, 0.9, 0.99, 1.0] {
                let exact = Self.exact(values, q)
                let estimate = sketch.quantile(q)!
                #expect(abs(estimate - exact) / exact <= 0.0100001, "q=\(q): \(estimate) for \(exact)")
            }
        }
    }

    @Test func zeroIsItsOwnBucket() {
        var sketch = LatencySketch()
        sketch.add(micros: 0)
        sketch.add(micros: 0)
        sketch.add(micros: -5)
        #expect(sketch.quantile(0.5) == 0)
        #expect(sketch.count == 3)
    }

    @Test func addingSketchesIsAddingTheirSamplesAndSubtractingUndoesIt() async {
        let halves = Gen.int64(in: 0...10_000_000).array(of: 0...100)
        await propertyCheck(count: 200, input: halves, halves) { a, b in
            var left = LatencySketch(), right = LatencySketch(), all = LatencySketch()
            for v in a { left.add(micros: v); all.add(micros: v) }
            for v in b { right.add(micros: v); all.add(micros: v) }
            var merged = left
            merged.add(right)
            #expect(merged.count == all.count)
            for q in [0.5, 0.9, 0.99] { #expect(merged.quantile(q) == all.quantile(q)) }
            merged.subtract(right)
            #expect(merged.count == left.count)
            for q in [0.5, 0.99] { #expect(merged.quantile(q) == left.quantile(q)) }
            merged.subtract(left)
            #expect(merged.isEmpty && merged.counts.isEmpty, "an emptied sketch holds no counters")
        }
    }

    @Test func anyDurationAtAllKeepsTheCountersBounded() {
        var sketch = LatencySketch()
        for value: Int64 in [Int64.max, 1, 0, Int64.min, 86_400_000_000 * 365] { sketch.add(micros: value) }
        #expect(sketch.counts.count <= 1_300, "clamped to a day: \(sketch.counts.count) counters")
        #expect(sketch.quantile(1.0)! <= Double(LatencySketch.maxMicros) * 1.01)
    }
}
