import ALSTapALS

/// JSON lines with a field mask applied (`fields=`), shared by one loop's subscribers: the hub
/// offers each batch to every sink in turn, so a batch is projected once per distinct mask however
/// many subscribers ask, and only when one of them has an entry of it to write. A few recent
/// batches are kept (a cluster tap interleaves its replicas' batches entry by entry), within a
/// byte bound. Loop-confined.
public final class MaskedLines {
    /// Recent batches' lines (held: a freed buffer's address reused by a new batch cannot be
    /// mistaken for it) and their projections by mask, newest last.
    private var recent: [(source: SharedBytes, projected: [String: EncodedLines])] = []
    private var projectedBytes = 0
    private let writer = ByteWriter(capacity: 16 * 1024)
    private var ends: [UInt32] = []

    /// Batches kept, and the bytes of projections kept, at most.
    static let maxBatches = 8
    static let maxBytes = 4 << 20

    public init() {}

    /// `json`'s lines, each projected through `mask`.
    public func lines(_ json: EncodedLines, _ mask: FieldMask) -> EncodedLines {
        var index = recent.lastIndex { $0.source === json.bytes }
        if let index, let lines = recent[index].projected[mask.canonical] { return lines }
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
        if projectedBytes + lines.bytes.count > Self.maxBytes {
            recent.removeAll()
            projectedBytes = 0
            index = nil
        }
        projectedBytes += lines.bytes.count
        if let index {
            recent[index].projected[mask.canonical] = lines
        } else {
            if recent.count == Self.maxBatches {
                projectedBytes -= recent[0].projected.values.reduce(0) { $0 + $1.bytes.count }
                recent.removeFirst()
            }
            recent.append((json.bytes, [mask.canonical: lines]))
        }
        return lines
    }
}
