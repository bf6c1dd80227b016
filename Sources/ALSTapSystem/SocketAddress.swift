import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// A listen address: `HOST:PORT`, `[IPV6]:PORT` or `:PORT` (all interfaces).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `0.0.0.0:9001`, `[::]:9001`, `localhost:9001`, `:9001`; nil when malformed or
    /// when the host is a name other than localhost.
    public init?(parsing text: String) {
        // `:PORT` is every interface.
        guard let hostPort = HostPort(parsing: text.hasPrefix(":") ? "0.0.0.0" + text : text) else { return nil }
        self.init(literal: hostPort)
    }

    /// An IP literal, or `localhost` taken as 127.0.0.1; nil for a name that needs DNS.
    init?(literal hostPort: HostPort) {
        let host = hostPort.host == "localhost" ? "127.0.0.1" : hostPort.host
        var probe4 = in_addr()
        var probe6 = in6_addr()
        guard inet_pton(AF_INET, host, &probe4) == 1 || inet_pton(AF_INET6, host, &probe6) == 1 else { return nil }
        self.init(host: host, port: hostPort.port)
    }

    public var isIPv6: Bool { host.contains(":") }

    /// Calls `body` with this address as a `sockaddr` (the host must be an IP literal).
    func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        var storage = sockaddr_storage()
        let length: socklen_t
        if isIPv6 {
            length = withUnsafeMutableBytes(of: &storage) { raw in
                let sin6 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
                sin6.pointee.sin6_family = sa_family_t(AF_INET6)
                sin6.pointee.sin6_port = port.bigEndian
                inet_pton(AF_INET6, host, &sin6.pointee.sin6_addr)
                return socklen_t(MemoryLayout<sockaddr_in6>.size)
            }
        } else {
            length = withUnsafeMutableBytes(of: &storage) { raw in
                let sin = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
                sin.pointee.sin_family = sa_family_t(AF_INET)
                sin.pointee.sin_port = port.bigEndian
                inet_pton(AF_INET, host, &sin.pointee.sin_addr)
                return socklen_t(MemoryLayout<sockaddr_in>.size)
            }
        }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
    public var description: String { HostPort(host: host, port: port).description }
}

/// A listening TCP socket with SO_REUSEPORT, so every event loop can accept on its own socket.
public enum Listener {
    /// Fails with EADDRINUSE if another process holds the port, even with SO_REUSEPORT
    /// (which would otherwise let a second alstap silently share, and split, the traffic).
    public static func checkAvailable(_ address: ListenAddress) throws(SystemError) {
        guard address.port != 0 else { return }
        let probe = try bound(address, reusePort: false)
        Syscalls.close(probe)
    }

    /// Binds with SO_REUSEPORT and listens; returns the descriptor and the port actually bound
    /// (useful with port 0). Call once per event loop for the same address.
    public static func open(_ address: ListenAddress, backlog: Int32 = 1024) throws(SystemError) -> (fd: Int32, port: UInt16) {
        let fd = try bound(address, reusePort: true)
        guard listen(fd, backlog) == 0 else {
            let err = CLinux_errno()
            Syscalls.close(fd)
            throw SystemError("listen \(address)", errno: err)
        }
        return (fd, boundPort(fd))
    }

    private static func bound(_ address: ListenAddress, reusePort: Bool) throws(SystemError) -> Int32 {
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let fd = CLinux_socket_nonblocking(family, Int32(SOCK_STREAM.rawValue))
        guard fd >= 0 else { throw SystemError("socket", errno: CLinux_errno()) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if reusePort { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) }
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        guard bound == 0 else {
            let err = CLinux_errno()
            Syscalls.close(fd)
            throw SystemError("bind \(address)", errno: err)
        }
        return fd
    }

    static func boundPort(_ fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return withUnsafeBytes(of: &storage) { raw in
            if Int32(raw.load(as: sa_family_t.self)) == AF_INET6 {
                return UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
            }
            return UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
        }
    }
}
