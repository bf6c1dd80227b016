import ALSTapALS

/// JSON lines with a field mask applied (`fields=`), shared by one loop's subscribers: the hub
/// offers a batch to every sink before the next, so a batch is projected once per distinct mask
/// however many subscribers ask, and only when one of them has an entry of it to write. Only the
/// latest batch's projections are kept. Loop-confined.
public final class MaskedLines {
    /// The batch's lines the projections were cut from (held: a freed buffer's address reused by
    /// a new batch cannot be mistaken for it), and its projections by mask.
    private var source: SharedBytes?
    private var projected: [String: EncodedLines] = [:]
    private let writer = ByteWriter(capacity: 16 * 1024)
    private var ends: [UInt32] = []

    public init() {}

    /// `json`'s lines, each projected through `mask`.
    public func lines(_ json: EncodedLines, _ mask: FieldMask) -> EncodedLines {
        if source === json.bytes, let lines = projected[mask.canonical] { return lines }
        if source !== json.bytes {
            source = json.bytes
            projected.removeAll(keepingCapacity: true)
        }
        writer.removeAll()
        ends.removeAll(keepingCapacity: true)
        var start = 0
        for (line, end) in json.lineEnds.enumerated() {
            // With the members' offsets (the decoder's, for masked subscribers) the members the
            // mask drops are not read; pair records have none and are scanned.
            mask.project(UnsafeRawBufferPointer(rebasing: json.bytes.bytes[start..<Int(end)]),
                         members: json.members?.members(ofLine: line), lineOffset: start, into: writer)
            ends.append(UInt32(writer.count))
            start = Int(end)
        }
        let lines = EncodedLines(bytes: writer.take(), lineEnds: ends)
        projected[mask.canonical] = lines
        return lines
    }
}
