import Glibc
import Testing

@testable import ALSTapSystem

/// Counts the events it gets; optionally runs `onEvent` for the first one.
final class CountingHandler: EventHandler {
    var events = 0
    var onEvent: (() -> Void)?

    func handle(events: UInt32) {
        self.events += 1
        if events == 1 || self.events == 1 { onEvent?() }
        onEvent = nil
    }

    func loopStopped() {}
}

@Suite struct EventLoopTests {
    /// Two readable pipes; whichever handler runs first closes the other pipe's read end and
    /// puts a new descriptor under the same number: the event already fetched for the old one
    /// must not reach the new handler.
    @Test func anEventForAReusedDescriptorDoesNotReachItsNewHandler() throws {
        let loop = try EventLoop(index: 0)
        var a: [Int32] = [0, 0], b: [Int32] = [0, 0]
        #expect(pipe(&a) == 0)
        #expect(pipe(&b) == 0)
        let first = CountingHandler(), second = CountingHandler(), newcomer = CountingHandler()
        var replacement: [Int32] = [0, 0]
        #expect(pipe(&replacement) == 0)
        func swap(out fd: Int32) {
            loop.deregister(fd)
            close(fd)
            #expect(dup2(replacement[0], fd) == fd)  // same number, a new file; readable too
            _ = write(replacement[1], "y", 1)
            try! loop.register(fd, handler: newcomer, events: EventMask.readable)
            loop.stop()
        }
        first.onEvent = { swap(out: b[0]) }
        second.onEvent = { swap(out: a[0]) }
        try loop.register(a[0], handler: first, events: EventMask.readable)
        try loop.register(b[0], handler: second, events: EventMask.readable)
        _ = write(a[1], "x", 1)
        _ = write(b[1], "x", 1)
        loop.run()
        #expect(first.events + second.events == 1)
        #expect(newcomer.events == 0, "the stale event was dropped")
        #expect(loop.takeStaleEvents() == 1)
        for fd in [a[0], a[1], b[0], b[1], replacement[0], replacement[1]] { close(fd) }
    }
}
