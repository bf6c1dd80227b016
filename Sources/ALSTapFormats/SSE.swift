import ALSTapALS

/// Server-sent events (`format=sse`): each entry's JSON line becomes `data: <line>` and a blank
/// line; notices are events named after their type. The framing bytes are static buffers that
/// every subscriber's queue points at between slices of the shared JSON lines.
public enum SSE {
    /// Before an entry's JSON line.
    public static let eventStart = SharedBytes("data: ")
    /// After it (the line's own newline ends the `data:` field; this one ends the event).
    public static let eventEnd = SharedBytes("\n")

    /// A named event with one line of data.
    public static func event(_ name: String, data: String) -> SharedBytes {
        SharedBytes("event: \(name)\ndata: \(data)\n\n")
    }
}

extension OutputFormat {
    /// Headers a tap stream in this format adds: a capture is a file to save.
    public var streamHeaders: [(String, String)] {
        self == .capture ? [("Content-Disposition", "attachment; filename=\"capture.alstap\"")] : []
    }

    /// The Content-Type of a tap stream in this format.
    public var contentType: String {
        switch self {
        case .json: "application/x-ndjson"
        case .text: "text/plain; charset=utf-8"
        case .als: "application/vnd.alstap.als-frames"
        case .capture: CaptureFile.contentType
        case .sse: "text/event-stream"
        }
    }
}
