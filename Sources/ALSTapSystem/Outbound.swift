import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// Client sockets, for reading other alstap replicas.
public enum Outbound {
    /// Starts a non-blocking connect; the socket turns writable when it completes (then check
    /// `pendingError`).
    public static func connect(_ address: ListenAddress) throws(SystemError) -> Int32 {
        let fd = CLinux_socket_nonblocking(address.isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue))
        guard fd >= 0 else { throw SystemError("socket", errno: CLinux_errno()) }
        let result = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        if result != 0 && CLinux_errno() != EINPROGRESS {
            let err = CLinux_errno()
            Syscalls.close(fd)
            throw SystemError("connect \(address)", errno: err)
        }
        Syscalls.setNoDelay(fd)
        return fd
    }

    /// A blocking connect (the CLI's one socket, no event loop); the descriptor is close-on-exec.
    public static func connectBlocking(_ address: ListenAddress) throws(SystemError) -> Int32 {
        let fd = socket(address.isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", errno: CLinux_errno()) }
        guard address.withSockaddr({ Glibc.connect(fd, $0, $1) }) == 0 else {
            let err = CLinux_errno()
            Syscalls.close(fd)
            throw SystemError("connect \(address)", errno: err)
        }
        return fd
    }

    /// The error of a finished non-blocking connect (0: connected).
    public static func pendingError(_ fd: Int32) -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return CLinux_errno() }
        return error
    }

    /// The addresses `host` resolves to (a blocking getaddrinfo: call it off the event loops).
    public static func resolve(host: String, port: UInt16) -> [ListenAddress] {
        if let literal = ListenAddress(literal: HostPort(host: host, port: port)) { return [literal] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0 else { return [] }
        defer { freeaddrinfo(list) }
        var found: [ListenAddress] = []
        var node = list
        while let info = node {
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let family = info.pointee.ai_family
            if let addr = info.pointee.ai_addr, family == AF_INET || family == AF_INET6 {
                let ok: Bool = family == AF_INET
                    ? addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet_ntop(AF_INET, &$0.pointee.sin_addr, &text, socklen_t(text.count)) != nil }
                    : addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { inet_ntop(AF_INET6, &$0.pointee.sin6_addr, &text, socklen_t(text.count)) != nil }
                let address = ListenAddress(host: String(cString: text), port: port)
                if ok && !found.contains(address) { found.append(address) }
            }
            node = info.pointee.ai_next
        }
        return found
    }
}
