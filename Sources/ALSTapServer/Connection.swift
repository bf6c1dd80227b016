import ALSTapMetrics
import ALSTapSystem
#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking socket owned by one loop, with a bounded backlog of unwritten output.
///
/// Subclasses speak a protocol; this class moves bytes and closes. Loop-confined.
class Connection: EventHandler {
    let fd: Int32
    /// What the listener that accepted it serves.
    let role: ListenerRole
    unowned let context: LoopContext
    private(set) var isClosed = false
    /// Bytes accepted for sending that the socket did not take yet.
    private var pending: [UInt8] = []
    private var pendingOffset = 0
    private var watchingWritable = false

    init(fd: Int32, role: ListenerRole, context: LoopContext) {
        self.fd = fd
        self.role = role
        self.context = context
    }

    var hasPendingOutput: Bool { pendingOffset < pending.count }

    func handle(events: UInt32) {
        if events & EventMask.writable != 0 {
            if flushPending() { writable() }
        }
        if isClosed { return }
        if events & (EventMask.readable | EventMask.hangup) != 0 { readable() }
    }

    func loopStopped() { close() }

    /// Subclasses: the socket has bytes (or EOF) to read.
    func readable() {}
    /// Subclasses: pending output drained; more may be written.
    func writable() {}
    /// Subclasses: release protocol state. Called once, before the socket closes.
    func closing() {}

    /// Reads once into the loop's buffer; nil when there is nothing (would block); closes on EOF/error.
    func readOnce() -> UnsafeRawBufferPointer? {
        do {
            switch try Syscalls.read(fd, into: context.readBuffer) {
            case .processed(let count):
                context.counters.add(.bytesReceived, count)
                return UnsafeRawBufferPointer(rebasing: context.readBuffer[..<count])
            case .wouldBlock: return nil
            case .endOfFile:
                close()
                return nil
            }
        } catch {
            close()
            return nil
        }
    }

    /// Writes what the socket takes now and keeps the rest. Returns false if anything is left.
    @discardableResult
    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !isClosed else { return false }
        guard !hasPendingOutput else {
            pending.append(contentsOf: bytes)
            return false
        }
        var offset = 0
        while offset < bytes.count {
            do {
                switch try Syscalls.write(fd, UnsafeRawBufferPointer(rebasing: bytes[offset...])) {
                case .processed(let count):
                    offset += count
                    context.counters.add(.bytesSent, count)
                case .wouldBlock, .endOfFile:
                    pending.removeAll(keepingCapacity: true)
                    pending.append(contentsOf: bytes[offset...])
                    pendingOffset = 0
                    watchWritable(true)
                    return false
                }
            } catch {
                close()
                return false
            }
        }
        return true
    }

    func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { _ = write($0) }
    }

    /// Tries to send the backlog; true when it is empty.
    func flushPending() -> Bool {
        guard hasPendingOutput else {
            watchWritable(false)
            return true
        }
        let remaining = pending.count - pendingOffset
        let written: Int? = pending.withUnsafeBytes { all in
            do {
                switch try Syscalls.write(fd, UnsafeRawBufferPointer(rebasing: all[pendingOffset...])) {
                case .processed(let count): return count
                case .wouldBlock, .endOfFile: return 0
                }
            } catch {
                return nil
            }
        }
        guard let written else {
            close()
            return false
        }
        pendingOffset += written
        context.counters.add(.bytesSent, written)
        if written == remaining {
            pending.removeAll(keepingCapacity: pending.capacity <= 64 * 1024)
            pendingOffset = 0
            watchWritable(false)
            return true
        }
        watchWritable(true)
        return false
    }

    func watchWritable(_ on: Bool) {
        guard on != watchingWritable, !isClosed else { return }
        watchingWritable = on
        context.loop.modify(fd, events: EventMask.readable | EventMask.peerClosedWriting | (on ? EventMask.writable : 0))
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        closing()
        context.loop.deregister(fd)
        Syscalls.close(fd)
        context.counters.subtract(.connectionsActive)
    }
}
