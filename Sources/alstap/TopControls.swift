import ALSTapFilter

/// The keys of `alstap top`'s full-screen view, as a state machine: a byte read from the
/// terminal in, what to do out. Escape sequences (arrows, function keys, Alt+key) are swallowed
/// whole, so their bytes never count as keys.
struct TopControls: Equatable {
    enum Action: Equatable {
        case none
        /// The sort changed: draw again.
        case redraw
        /// The grouping changed: reopen `/top` with the new `by`.
        case regroup
        case quit
    }

    /// Where the reader is in an escape sequence.
    private enum Input: Equatable {
        case key
        /// After ESC.
        case escape
        /// After ESC [ or ESC O, until the sequence's final byte.
        case sequence
    }

    var sort: TopSort
    var by: TopGrouping
    var reversed = false
    private var input = Input.key

    init(sort: TopSort, by: TopGrouping) {
        self.sort = sort
        self.by = by
    }

    mutating func press(_ byte: UInt8) -> Action {
        switch input {
        case .escape:
            input = byte == UInt8(ascii: "[") || byte == UInt8(ascii: "O") ? .sequence : .key
            return .none
        case .sequence:
            if (0x40...0x7E).contains(byte) { input = .key }
            return .none
        case .key:
            break
        }
        switch byte {
        case 0x1B:
            input = .escape
            return .none
        case UInt8(ascii: "q"), UInt8(ascii: "Q"), 0x03:  // 0x03: Ctrl-C, should the terminal pass it as a byte
            return .quit
        case UInt8(ascii: "s"):
            sort = Self.step(sort, by: 1)
            return .redraw
        case UInt8(ascii: "S"):
            sort = Self.step(sort, by: -1)
            return .redraw
        case UInt8(ascii: "r"):
            reversed.toggle()
            return .redraw
        case UInt8(ascii: "b"):
            by = Self.step(by, by: 1)
            return .regroup
        case UInt8(ascii: "B"):
            by = Self.step(by, by: -1)
            return .regroup
        default:
            return .none
        }
    }

    /// The case `offset` places after `value`, wrapping around.
    private static func step<T: CaseIterable & Equatable>(_ value: T, by offset: Int) -> T where T.AllCases == [T] {
        let cases = T.allCases
        let index = cases.firstIndex(of: value)!
        return cases[(index + offset + cases.count) % cases.count]
    }
}
