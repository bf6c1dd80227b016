import ALSTapCore
import ALSTapHTTP2

// The bodies an HTTP/2 connection sends: a tap's queued lines, and responses from memory.

/// A tap subscriber served on one HTTP/2 stream (deferred data provider). Loop-confined.
final class HTTP2TapStream: SubscriberTransport {
    let stream: Int32
    let subscriber: Subscriber
    private unowned let connection: HTTP2Connection

    init(stream: Int32, subscriber: Subscriber, connection: HTTP2Connection) {
        self.stream = stream
        self.subscriber = subscriber
        self.connection = connection
    }

    func subscriberHasData() { connection.tapHasData(stream: stream) }

    /// Copies queued lines into nghttp2's frame buffer; defers when there are none.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyRead {
        var copied = 0
        subscriber.forEachQueuedSlice { slice in
            let count = min(slice.count, buffer.count - copied)
            UnsafeMutableRawBufferPointer(rebasing: buffer[copied..<(copied + count)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: slice[..<count]))
            copied += count
            return copied < buffer.count
        }
        subscriber.consume(copied)
        if subscriber.isFinished { return .bytes(count: copied, end: true) }
        return copied == 0 ? .deferred : .bytes(count: copied, end: false)
    }
}

/// A response body sent from memory in the pieces nghttp2 asks for.
struct BodyCursor {
    let bytes: [UInt8]
    /// How much of it nghttp2 took.
    private(set) var sent = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyRead {
        let count = min(buffer.count, bytes.count - sent)
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[sent..<(sent + count)])) }
        sent += count
        return .bytes(count: count, end: sent == bytes.count)
    }
}
