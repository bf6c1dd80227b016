import ALSTapFilter

/// A snapshot's rows as aligned text columns, the numbers first (right-aligned), then the
/// group's labels and the response flags (left-aligned). Cut to a width, the widest label
/// columns shorten first (ending in `…`). Every label passes through `TerminalText.safe`: the
/// only escapes in the lines are the colors of the success and error cells.
struct TopTable {
    /// How worrying a row's error rate is, as the color of its ERRS and SUCCESS cells.
    enum Health: Equatable {
        /// No errors: green.
        case good
        /// Some, at most `warningRate` of the requests: yellow.
        case degraded
        /// More: red.
        case failing

        static let warningRate = 0.05

        init(_ row: TopLine.Row) {
            if row.errors == 0 {
                self = .good
            } else {
                self = Double(row.errors) <= Self.warningRate * Double(row.requests) ? .degraded : .failing
            }
        }

        var sgr: String {
            switch self {
            case .good: "32"
            case .degraded: "33"
            case .failing: "31"
            }
        }
    }

    /// A cell's text and, if it is colored, its SGR parameter.
    private struct Cell {
        var text: String
        var sgr: String?
    }

    static let numberTitles = ["REQS", "RPS", "ERRS", "SUCCESS", "P50", "P99"]
    static let separator = "  "
    /// A label column is not cut below this (unless the whole line still does not fit).
    static let minimumLabelWidth = 6

    let by: TopGrouping
    let color: Bool

    var labelTitles: [String] {
        let labels = switch by {
        case .edge: ["SOURCE", "DESTINATION"]
        case .route: ["SOURCE", "DESTINATION", "METHOD", "AUTHORITY", "ROUTE"]
        case .destination: ["DESTINATION"]
        case .source: ["SOURCE"]
        case .reporter: ["REPORTER"]
        }
        return labels + ["FLAGS"]
    }

    /// The title line, then one line per row, each at most `width` characters (nil: as wide as
    /// the cells are).
    func lines(_ rows: [TopLine.Row], width: Int? = nil) -> [String] {
        let titles = Self.numberTitles + labelTitles
        let cells = rows.map { numberCells($0) + labelCells($0) }
        var widths = titles.indices.map { column in
            cells.reduce(titles[column].count) { max($0, $1[column].text.count) }
        }
        let numbers = Self.numberTitles.count
        if let width {
            let available = width - widths[..<numbers].reduce(0, +) - Self.separator.count * (titles.count - 1)
            widths[numbers...] = Self.fit(Array(widths[numbers...]), into: available)[...]
        }
        let titleCells = titles.map { Cell(text: $0, sgr: color ? "1" : nil) }
        return ([titleCells] + cells).map { line in
            let padded = line.indices.map { column in
                let text = Self.truncate(line[column].text, to: widths[column])
                let padding = String(repeating: " ", count: widths[column] - text.count)
                return Cell(text: column < numbers ? padding + text : text + padding, sgr: line[column].sgr)
            }
            return render(padded, width: width)
        }
    }

    /// Widths for columns `natural` wide within `available`: each at most a cap, as large as
    /// fits; a column is never cut below `minimumLabelWidth` (the line may then be cut).
    static func fit(_ natural: [Int], into available: Int) -> [Int] {
        guard natural.reduce(0, +) > available else { return natural }
        var cap = natural.max() ?? 0
        func total(_ cap: Int) -> Int { natural.reduce(0) { $0 + min($1, cap) } }
        while cap > minimumLabelWidth && total(cap) > available { cap -= 1 }
        var widths = natural.map { min($0, cap) }
        // What a cap step left over goes to the cut columns, left first.
        var spare = available - total(cap)
        for column in widths.indices where spare > 0 && widths[column] < natural[column] {
            widths[column] += 1
            spare -= 1
        }
        return widths
    }

    /// `text` in at most `width` characters, ending in `…` when cut.
    static func truncate(_ text: String, to width: Int) -> String {
        guard text.count > width else { return text }
        return width <= 0 ? "" : text.prefix(width - 1) + "…"
    }

    /// `REQS RPS ERRS SUCCESS P50 P99` of a row.
    private func numberCells(_ row: TopLine.Row) -> [Cell] {
        let health = color ? Health(row).sgr : nil
        return [
            Cell(text: String(row.requests)),
            Cell(text: Self.fixed(row.rps, decimals: 1)),
            Cell(text: String(row.errors), sgr: row.errors > 0 ? health : nil),
            Cell(text: Self.fixed(100 * row.successRate, decimals: 2) + "%", sgr: health),
            Cell(text: row.latencyMs.map { TapFormatter.latency($0.p50) } ?? "-"),
            Cell(text: row.latencyMs.map { TapFormatter.latency($0.p99) } ?? "-"),
        ]
    }

    /// The group's labels and the flags, terminal-safe.
    private func labelCells(_ row: TopLine.Row) -> [Cell] {
        var labels: [String]
        if row.other == true {
            labels = ["(other)"] + Array(repeating: "", count: labelTitles.count - 2)
        } else {
            labels = switch by {
            case .edge: [row.source?.label ?? "-", row.destination?.label ?? "-"]
            case .route:
                [row.source?.label ?? "-", row.destination?.label ?? "-",
                 row.method.map { $0.isEmpty ? "-" : $0 } ?? "-", row.authority ?? "-", row.route ?? "-"]
            case .destination: [row.destination?.label ?? "-"]
            case .source: [row.source?.label ?? "-"]
            case .reporter: [row.reporter?.label ?? "-"]
            }
        }
        let flags = (row.flags ?? [:]).sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        labels.append(flags.map { "\($0.key):\($0.value)" }.joined(separator: " "))
        return labels.map { Cell(text: TerminalText.safe($0)) }
    }

    /// The cells joined, without trailing spaces, cut at `width`; colors wrap the visible text only.
    private func render(_ cells: [Cell], width: Int?) -> String {
        // The visible line without its trailing spaces sets how many characters to show.
        var plain = cells.map(\.text).joined(separator: Self.separator)
        while plain.last == " " { plain.removeLast() }
        var remaining = min(width ?? Int.max, plain.count)
        var line = ""
        for (index, cell) in cells.enumerated() where remaining > 0 {
            let text = String((index == 0 ? "" : Self.separator) + cell.text).prefix(remaining)
            remaining -= text.count
            if let sgr = cell.sgr, color {
                // Separator and padding stay outside the color.
                let visible = text.trimmingCharacters(in: " ")
                let lead = text.prefix { $0 == " " }
                let trail = text.dropFirst(lead.count + visible.count)
                line += lead + "\u{1B}[\(sgr)m\(visible)\u{1B}[0m" + trail
            } else {
                line += text
            }
        }
        return line
    }

    /// `totals` and the window: `by edge, window 10s (covered 1.2s): 200 requests, 160.8 rps, …`.
    static func summary(_ snapshot: TopLine) -> String {
        let totals = snapshot.totals
        var text = "by \(TerminalText.safe(snapshot.by ?? "?")), window \(snapshot.window ?? 0)s"
            + " (covered \(fixed(snapshot.covered ?? 0, decimals: 1))s): \(totals?.requests ?? 0) requests,"
            + " \(fixed(totals?.rps ?? 0, decimals: 1)) rps,"
            + " \(fixed(100 * (totals?.successRate ?? 1), decimals: 2))% success"
        if let latency = totals?.latencyMs { text += ", p99 \(TapFormatter.latency(latency.p99))" }
        return text + ", \(snapshot.groups ?? 0) groups"
    }

    /// `value` with `decimals` digits after the point (negative and non-finite as 0).
    static func fixed(_ value: Double, decimals: Int) -> String {
        var scale = 1
        for _ in 0..<decimals { scale *= 10 }
        let units = value.isFinite && value > 0 ? Int(min(value * Double(scale), 9e15).rounded()) : 0
        guard decimals > 0 else { return String(units) }
        let fraction = String(units % scale)
        return "\(units / scale)." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }
}
