import Glibc
import Testing

@testable import ALSTapSystem

@Suite struct HostPortTests {
    @Test func namesAndIPv4WithPorts() {
        #expect(HostPort(parsing: "example.com:8080") == HostPort(host: "example.com", port: 8080))
        #expect(HostPort(parsing: "10.0.0.1:0") == HostPort(host: "10.0.0.1", port: 0))
        #expect(HostPort(parsing: "h:65535")?.port == 65535)
    }

    @Test func bracketedIPv6() {
        #expect(HostPort(parsing: "[::1]:9001") == HostPort(host: "::1", port: 9001))
        #expect(HostPort(parsing: "[fe80::1%eth0]:80")?.host == "fe80::1%eth0")
        #expect(HostPort(host: "::1", port: 9001).description == "[::1]:9001")
        #expect(HostPort(host: "a.b", port: 1).description == "a.b:1")
    }

    @Test func defaultPortOnlyWhenNoneIsWritten() {
        #expect(HostPort(parsing: "example.com", defaultPort: 80) == HostPort(host: "example.com", port: 80))
        #expect(HostPort(parsing: "[::1]", defaultPort: 80) == HostPort(host: "::1", port: 80))
        #expect(HostPort(parsing: "example.com:81", defaultPort: 80)?.port == 81)
        #expect(HostPort(parsing: "example.com") == nil)
        #expect(HostPort(parsing: "[::1]") == nil)
        // Unbracketed IPv6, as earlier versions read it: the port after the last colon.
        #expect(HostPort(parsing: ":::9001") == HostPort(host: "::", port: 9001))
        #expect(HostPort(parsing: "fe80::1:9002") == HostPort(host: "fe80::1", port: 9002))
    }

    @Test(arguments: ["", ":80", "[]:80", "host:", "host:65536", "host:-1", "host:+80", "host:8o",
                      "host: 80", "[::1", "[::1]80", "[::1]:", "a[b]:80", "a:b:c:x:80", "host:name:80"])
    func malformedIsNil(_ text: String) {
        #expect(HostPort(parsing: text, defaultPort: 80) == nil, "\"\(text)\" parsed")
    }

    @Test func listenAddressTakesLiteralsLocalhostAndBarePort() {
        #expect(ListenAddress(parsing: "0.0.0.0:9001") == ListenAddress(host: "0.0.0.0", port: 9001))
        #expect(ListenAddress(parsing: ":9001") == ListenAddress(host: "0.0.0.0", port: 9001))
        #expect(ListenAddress(parsing: "localhost:9002") == ListenAddress(host: "127.0.0.1", port: 9002))
        #expect(ListenAddress(parsing: "[::]:9001")?.isIPv6 == true)
        #expect(ListenAddress(parsing: "example.com:9001") == nil, "a name needs DNS, not a listen address")
        #expect(ListenAddress(parsing: "0.0.0.0") == nil)
    }

    @Test func resolveTakesLiteralsWithoutDNS() {
        #expect(Outbound.resolve(host: "::1", port: 7) == [ListenAddress(host: "::1", port: 7)])
        #expect(Outbound.resolve(host: "localhost", port: 7) == [ListenAddress(host: "127.0.0.1", port: 7)])
    }

    @Test func connectBlockingReachesAListenerAndReportsRefusal() throws {
        let (listener, port) = try Listener.open(ListenAddress(host: "127.0.0.1", port: 0))
        defer { Syscalls.close(listener) }
        let fd = try Outbound.connectBlocking(ListenAddress(host: "127.0.0.1", port: port))
        Syscalls.close(fd)
        // A port just bound and released has no listener.
        let (probe, freePort) = try Listener.open(ListenAddress(host: "127.0.0.1", port: 0))
        Syscalls.close(probe)
        let refused = #expect(throws: SystemError.self) {
            try Outbound.connectBlocking(ListenAddress(host: "127.0.0.1", port: freePort))
        }
        #expect(refused?.errno == ECONNREFUSED)
    }
}
