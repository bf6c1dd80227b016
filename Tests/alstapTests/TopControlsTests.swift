import ALSTapFilter
import Testing

@testable import alstap

@Suite struct TopControlsTests {
    /// The actions of `keys` typed in order, and the controls after them.
    func type(_ keys: String, from controls: TopControls = TopControls(sort: .requests, by: .edge))
        -> ([TopControls.Action], TopControls) {
        var controls = controls
        let actions = keys.utf8.map { controls.press($0) }
        return (actions, controls)
    }

    @Test func sCyclesEverySortAndWraps() {
        var controls = TopControls(sort: .requests, by: .edge)
        var seen: [TopSort] = []
        for _ in TopSort.allCases {
            #expect(controls.press(UInt8(ascii: "s")) == .redraw)
            seen.append(controls.sort)
        }
        #expect(seen == [.rps, .errors, .success, .p99, .latency, .requests])
        #expect(type("S").1.sort == .latency, "S goes back")
    }

    @Test func bChangesTheGroupingAndAsksToReconnect() {
        let (actions, controls) = type("bb")
        #expect(actions == [.regroup, .regroup])
        #expect(controls.by == .destination)
        #expect(type("B").1.by == .reporter)
        #expect(type("bbbbb").1.by == .edge, "wraps around")
    }

    @Test func rReversesAndQQuits() {
        let (actions, controls) = type("rxq")
        #expect(actions == [.redraw, .none, .quit])
        #expect(controls.reversed)
        #expect(type("rr").1.reversed == false)
        #expect(type("Q").0 == [.quit])
        #expect(type("\u{03}").0 == [.quit], "Ctrl-C as a byte")
    }

    /// Arrow and function keys, Alt+q: their bytes are not keys (ESC [ A holds no bound letter,
    /// but ESC O q — keypad 1 — does, and so does ESC [ 1 ; 5 q).
    @Test func escapeSequencesAreSwallowedWhole() {
        let sequences = ["\u{1B}[A", "\u{1B}OP", "\u{1B}Oq", "\u{1B}[1;5C", "\u{1B}[15~", "\u{1B}[1;5q", "\u{1B}q", "\u{1B}s"]
        for sequence in sequences {
            let (actions, controls) = type(sequence + "s")
            #expect(actions.dropLast().allSatisfy { $0 == .none }, "\(sequence.debugDescription)")
            #expect(actions.last == .redraw && controls.sort == .rps,
                    "the key after \(sequence.debugDescription) counts")
        }
    }
}
