import CLinux
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Something registered with an event loop for readiness events on one file descriptor.
public protocol EventHandler: AnyObject {
    /// Called on the loop's thread with the epoll event mask (`EventMask`).
    func handle(events: UInt32)
    /// The loop has stopped for good: release the descriptor and the state.
    func loopStopped()
}

/// epoll event bits, as plain integers.
public enum EventMask {
    public static let readable = UInt32(EPOLLIN.rawValue)
    public static let writable = UInt32(EPOLLOUT.rawValue)
    public static let hangup = UInt32(EPOLLHUP.rawValue) | UInt32(EPOLLERR.rawValue) | UInt32(EPOLLRDHUP.rawValue)
    public static let peerClosedWriting = UInt32(EPOLLRDHUP.rawValue)
}

/// Monotonic time in nanoseconds.
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Wall-clock time, µs since the epoch (for timestamps people read, never for intervals).
public func wallClockMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
}

/// A wall-clock time (µs since the epoch) on the monotonic clock, as long ago as it is now (0
/// for a time before the monotonic clock began; the present for a time in the future).
public func monotonicNanos(atWallMicros micros: Int64) -> UInt64 {
    let agoNanos = UInt64(max(0, wallClockMicros() - micros)) &* 1000
    let now = monotonicNanos()
    return now > agoNanos ? now - agoNanos : 0
}

/// One epoll instance driven by one thread. Connections live on one loop for their whole life.
///
/// `@unchecked Sendable`: everything but `wake()` and `stop()` is used only on the loop's own
/// thread (the thread that calls `run()`); those two touch only atomics and the eventfd.
public final class EventLoop: @unchecked Sendable {
    public let index: Int
    private let epollFD: Int32
    private let wakeFD: Int32
    /// Each registration carries a generation in its epoll tag (`generation << 32 | fd`): an
    /// event already fetched for a descriptor that was closed and reused within the same batch
    /// names the old generation and is dropped instead of reaching the new handler.
    private var handlers: [Int32: (generation: UInt32, handler: any EventHandler)] = [:]
    private var nextGeneration: UInt32 = 0
    /// Events dropped as stale since `takeStaleEvents()`.
    private var staleEvents = 0
    private let stopRequested = Atomic<Bool>(false)
    private let wakePending = Atomic<Bool>(false)
    private let tickIntervalNanos: UInt64

    /// Runs on the loop after a `wake()` from any thread (drains cross-loop work).
    public var onWake: (() -> Void)?
    /// Runs after every round of events (flushes work batched during the round).
    public var onIterationEnd: (() -> Void)?
    /// Runs about every tick interval with the monotonic time (timeouts).
    public var onTick: ((UInt64) -> Void)?

    private static let wakeTag = UInt64.max

    private static func tag(_ fd: Int32, _ generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    public init(index: Int, tickIntervalMillis: Int = 250) throws(SystemError) {
        self.index = index
        tickIntervalNanos = UInt64(tickIntervalMillis) * 1_000_000
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw SystemError("epoll_create1", errno: CLinux_errno()) }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeFD >= 0 else { throw SystemError("eventfd", errno: CLinux_errno()) }
        _ = CLinux_epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, EventMask.readable, Self.wakeTag)
    }

    deinit {
        Syscalls.close(wakeFD)
        Syscalls.close(epollFD)
    }

    public func register(_ fd: Int32, handler: any EventHandler, events: UInt32) throws(SystemError) {
        nextGeneration = nextGeneration == UInt32.max - 1 ? 0 : nextGeneration + 1
        guard CLinux_epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, events, Self.tag(fd, nextGeneration)) == 0 else {
            throw SystemError("epoll_ctl(ADD)", errno: CLinux_errno())
        }
        handlers[fd] = (nextGeneration, handler)
    }

    public func modify(_ fd: Int32, events: UInt32) {
        guard let registration = handlers[fd] else { preconditionFailure("fd \(fd) is not registered") }
        let rc = CLinux_epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, events, Self.tag(fd, registration.generation))
        precondition(rc == 0, "epoll_ctl(MOD) on fd \(fd): errno \(CLinux_errno())")
    }

    /// Hands a registered descriptor to a new handler (a connection that changed protocol).
    public func replaceHandler(_ fd: Int32, with handler: any EventHandler) {
        guard let registration = handlers[fd] else { preconditionFailure("fd \(fd) is not registered") }
        handlers[fd] = (registration.generation, handler)
    }

    /// Stale events dropped since the last call (for the counters).
    public func takeStaleEvents() -> Int {
        defer { staleEvents = 0 }
        return staleEvents
    }

    /// Removes the descriptor from epoll; call before closing it.
    public func deregister(_ fd: Int32) {
        _ = CLinux_epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, 0, 0)
        handlers[fd] = nil
    }

    /// Wakes the loop from any thread. Coalesced: many wakes before the loop runs cost one write.
    public func wake() {
        if wakePending.exchange(true, ordering: .acquiringAndReleasing) { return }
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    /// Asks the loop to return from `run()`; callable from any thread.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        wake()
    }

    /// After `run()` returned (its thread joined): tells every handler and drops the callbacks,
    /// which would otherwise keep the loop and its connections alive in a cycle.
    public func tearDown() {
        let remaining = handlers.values
        handlers.removeAll()
        for registration in remaining { registration.handler.loopStopped() }
        onWake = nil
        onIterationEnd = nil
        onTick = nil
    }

    /// When `onTick` runs next (loop thread only).
    private var nextTick: UInt64 = 0

    /// Brings the next tick forward to `nanos` if it is later (a shutdown step due sooner than
    /// a tick away). Loop thread only.
    public func tick(atOrBefore nanos: UInt64) {
        nextTick = min(nextTick, nanos)
    }

    /// Runs until `stop()`. Must be called on the thread that owns this loop.
    public func run() {
        let capacity = 256
        let tags = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        let masks = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
        defer {
            tags.deallocate()
            masks.deallocate()
        }
        nextTick = monotonicNanos() + tickIntervalNanos
        while !stopRequested.load(ordering: .acquiring) {
            let now = monotonicNanos()
            if now >= nextTick {
                nextTick = now + tickIntervalNanos
                onTick?(now)
            }
            let timeoutMillis = Int32((nextTick - min(nextTick, now)) / 1_000_000) + 1
            let count = CLinux_epoll_wait(epollFD, tags, masks, Int32(capacity), timeoutMillis)
            if count < 0 {
                let err = CLinux_errno()
                precondition(err == EINTR, "epoll_wait: errno \(err)")
                continue
            }
            for i in 0..<Int(count) {
                if tags[i] == Self.wakeTag {
                    var value: UInt64 = 0
                    _ = Glibc.read(wakeFD, &value, 8)
                    wakePending.store(false, ordering: .releasing)
                    onWake?()
                } else if let registration = handlers[Int32(truncatingIfNeeded: tags[i])],
                          registration.generation == UInt32(truncatingIfNeeded: tags[i] >> 32) {
                    registration.handler.handle(events: masks[i])
                } else {
                    staleEvents += 1
                }
            }
            onIterationEnd?()
        }
    }
}

/// Starts a POSIX thread running `body`; `join()` waits for it.
public final class LoopThread: Sendable {
    private let thread: pthread_t

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        // Unmanaged: the closure box is retained here and released by the new thread,
        // which is its only user; pthread gives us no other way to pass a Swift value.
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Body { CLinux_set_thread_name(name); body() }).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            body.run()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        self.thread = thread
    }

    public func join() {
        pthread_join(thread, nil)
    }
}
