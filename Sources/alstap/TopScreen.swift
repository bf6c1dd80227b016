import ALSTapFilter

/// One frame of `alstap top`'s full-screen view (no I/O): a title line (server, time, what the
/// connection is doing), the totals, the sorted table cut to the terminal, and the keys in a
/// footer on the last line.
struct TopScreen {
    var width: Int
    var height: Int
    var color: Bool

    /// The lines around the rows: title, totals, a blank line, the table's titles, the footer.
    static let chromeLines = 5

    /// The frame's lines, at most `height`, each at most `width` characters (colors aside).
    func lines(server: String, status: String?, snapshot: TopLine?, controls: TopControls) -> [String] {
        var title = "alstap top  \(TerminalText.safe(server))"
        if let time = snapshot?.time { title += "  " + TerminalText.safe(TapFormatter.clock(time).prefix(8)) }
        if let status { title += "  " + TerminalText.safe(status) }
        var lines = [cut(title)]
        var hidden = 0
        // A snapshot of the grouping before a `b` is not shown under the new one's titles.
        if let snapshot, snapshot.by == controls.by.rawValue {
            lines += [cut(TopTable.summary(snapshot)), ""]
            let rows = controls.sort.ordered(snapshot.rows ?? [], reversed: controls.reversed)
            let shown = max(0, height - Self.chromeLines)
            hidden = max(0, rows.count - shown)
            lines += TopTable(by: controls.by, color: color).lines(Array(rows.prefix(shown)), width: width)
        } else {
            lines.append(cut("waiting for the first snapshot by \(controls.by.rawValue)…"))
        }
        var footer = "q quit  s/S sort: \(controls.sort.rawValue)\(controls.reversed ? " reversed" : "")  r reverse"
            + "  b/B by: \(controls.by.rawValue)"
        if hidden > 0 { footer += "  (\(hidden) more rows)" }
        let body = lines.prefix(max(0, height - 1))
        return body + Array(repeating: "", count: max(0, height - 1 - body.count)) + [cut(footer)]
    }

    /// The bytes that draw `lines`: each line erased and written at its row (no scrolling, no
    /// line wrap to depend on), in one write.
    static func frame(_ lines: [String]) -> String {
        var frame = ""
        for (index, line) in lines.enumerated() {
            frame += "\u{1B}[\(index + 1);1H\u{1B}[2K" + line
        }
        return frame
    }

    private func cut(_ line: String) -> String {
        TopTable.truncate(line, to: width)
    }
}
