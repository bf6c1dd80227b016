import ALSTapCore

/// Everything `subscriber` has queued, written out as a transport does (until nothing is left):
/// the bytes a client reads.
public func drainedText(_ subscriber: Subscriber) -> String {
    var out: [UInt8] = []
    while subscriber.hasData {
        var chunk: [UInt8] = []
        subscriber.forEachQueuedSlice { slice in
            chunk += slice
            return true
        }
        subscriber.consume(chunk.count)
        out += chunk
    }
    return String(decoding: out, as: UTF8.self)
}
