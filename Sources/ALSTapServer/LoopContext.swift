import ALSTapALS
import ALSTapSystem
import Logging

/// Something with a deadline for finishing its request head (or HTTP/2 preface).
protocol HeadDeadline: AnyObject {
    var headDeadlineNanos: UInt64 { get }
    func headTimedOut()
}

/// Per-loop state shared by the loop's connections: decoder, buffers, subscribers.
///
/// `@unchecked Sendable`: it is created on the main thread before the loop starts and then
/// used only by that loop's thread (everything arrives through `EventLoop` callbacks).
final class LoopContext: @unchecked Sendable {
    let loop: EventLoop
    let config: ServerConfig
    let hub: Hub
    let counters: Counters
    let logger: Logger
    let decoder = ALSDecoder()
    /// Socket reads land here; protocol code consumes the bytes before the next read.
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
    /// Output gathered before one write (HTTP/2 frames).
    let sendScratch = ByteWriter(capacity: 256 * 1024)
    private(set) var subscribers: [ObjectIdentifier: Subscriber] = [:]
    private var waitingForHead: [ObjectIdentifier: any HeadDeadline] = [:]
    var draining = false

    init(loop: EventLoop, config: ServerConfig, hub: Hub, counters: Counters, logger: Logger) {
        self.loop = loop
        self.config = config
        self.hub = hub
        self.counters = counters
        self.logger = logger
    }

    deinit { readBuffer.deallocate() }

    var inbox: LoopInbox { hub.inboxes[loop.index] }

    func addSubscriber(_ subscriber: Subscriber) {
        subscribers[ObjectIdentifier(subscriber)] = subscriber
        hub.subscriberAdded(format: subscriber.format, filtered: subscriber.filter != nil, loop: loop.index)
    }

    func removeSubscriber(_ subscriber: Subscriber) {
        guard subscribers.removeValue(forKey: ObjectIdentifier(subscriber)) != nil else { return }
        hub.subscriberRemoved(format: subscriber.format, filtered: subscriber.filter != nil, loop: loop.index)
    }

    func watchHead(_ connection: any HeadDeadline) {
        waitingForHead[ObjectIdentifier(connection)] = connection
    }

    func unwatchHead(_ connection: any HeadDeadline) {
        waitingForHead[ObjectIdentifier(connection)] = nil
    }

    /// Offers everything other loops (and this one) published to this loop's subscribers.
    func deliverInbox() {
        let (batches, dropped, tasks) = inbox.drain()
        for task in tasks { task() }
        guard !batches.isEmpty || dropped > 0 else { return }
        for subscriber in subscribers.values {
            if dropped > 0 { subscriber.noteLost(dropped) }
            for batch in batches { subscriber.offer(batch) }
            if subscriber.hasData { subscriber.transport?.subscriberHasData() }
        }
    }

    func tick(now: UInt64) {
        for connection in waitingForHead.values where connection.headDeadlineNanos <= now {
            waitingForHead[ObjectIdentifier(connection)] = nil
            counters.add(.headTimeouts)
            connection.headTimedOut()
        }
    }
}
