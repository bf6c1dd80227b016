import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: its name and errno. Errnos that mean a bug in alstap are preconditions instead.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: Int32

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The outcome of a non-blocking read or write.
public enum IOResult: Equatable, Sendable {
    case processed(Int)
    case wouldBlock
    case endOfFile
}

/// The one wrapper for every syscall: retries on EINTR, maps EAGAIN to `.wouldBlock`, throws otherwise.
@inline(__always)
func retryingSyscall(_ name: String, _ body: () -> Int) throws(SystemError) -> IOResult {
    while true {
        let result = body()
        if result >= 0 { return .processed(result) }
        let err = CLinux_errno()
        switch err {
        case EINTR: continue
        case EAGAIN, EWOULDBLOCK: return .wouldBlock
        case EBADF, EFAULT: preconditionFailure("\(name): \(err) means a bug in alstap")
        default: throw SystemError(name, errno: err)
        }
    }
}

/// Thin, non-blocking socket calls on raw file descriptors.
public enum Syscalls {
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult {
        let result = try retryingSyscall("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
        if case .processed(0) = result, buffer.count > 0 { return .endOfFile }
        return result
    }

    public static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemError) -> IOResult {
        try retryingSyscall("send") { Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Gathers up to `count` buffers in one call (the fan-out path writes many shared lines at once).
    public static func writev(_ fd: Int32, _ iov: UnsafePointer<iovec>, count: Int) throws(SystemError) -> IOResult {
        var header = msghdr()
        header.msg_iov = UnsafeMutablePointer(mutating: iov)
        header.msg_iovlen = count
        return try retryingSyscall("sendmsg") { Glibc.sendmsg(fd, &header, Int32(MSG_NOSIGNAL)) }
    }

    public static func close(_ fd: Int32) {
        // close() may report EINTR on Linux, but the descriptor is released regardless: never retry.
        _ = Glibc.close(fd)
    }

    public static func accept(_ fd: Int32) throws(SystemError) -> Int32? {
        switch try retryingSyscall("accept4", { Int(CLinux_accept_nonblocking(fd)) }) {
        case .processed(let newFD): return Int32(newFD)
        case .wouldBlock, .endOfFile: return nil
        }
    }

    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
}

/// Process-wide memory settings.
public enum Memory {
    /// Allocations below `bytes` come from the heap instead of fresh mmaps (glibc's default is
    /// 128 KiB, under which every batch of encoded lines would fault in new pages and unmap them).
    public static func setMmapThreshold(_ bytes: Int) {
        CLinux_set_mmap_threshold(Int32(clamping: bytes))
    }

    /// Gives free heap memory back to the system (the heap keeps what it freed otherwise, and
    /// the resident set would not come down after a peak).
    public static func trim() {
        _ = CLinux_trim_heap()
    }

    /// The process's resident set in bytes (`/proc/self/statm`), nil where it cannot be read.
    public static func residentBytes() -> Int? {
        guard let bytes = try? Files.read(atPath: "/proc/self/statm", maxBytes: 256) else { return nil }
        let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// The memory limit of the process's cgroup (v2 `memory.max`, else v1's), nil without one.
    public static func cgroupLimitBytes() -> Int? {
        for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            guard let bytes = try? Files.read(atPath: path, maxBytes: 64) else { continue }
            let text = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == " " }).first
            // "max", or in v1 a huge number (close to Int64.max, rounded to pages): no limit.
            if let text, let limit = Int(text), limit > 0, limit < 1 << 62 { return limit }
            return nil
        }
        return nil
    }
}
