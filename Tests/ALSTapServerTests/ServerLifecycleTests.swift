import ALSTapMetrics
import ALSTapSystem
import Logging
import Testing

@testable import ALSTapServer

/// A stopped server frees everything it built, whatever it had queued for its loops.
@Suite struct ServerLifecycleTests {
    private func config() -> ServerConfig {
        var config = ServerConfig()
        config.alsListen = ListenAddress(host: "127.0.0.1", port: 0)
        config.httpListen = ListenAddress(host: "127.0.0.1", port: 0)
        config.threads = 2
        return config
    }

    /// SIGTERM on an idle server: it is drained at once, so `stop()` can come before a loop ran the
    /// shutdown task it was sent. The task (which holds its loop's context) must not outlive the loop.
    @Test func aShutdownTaskNoLoopRanIsFreedWithTheServer() throws {
        weak var counters: Counters?
        do {
            let server = try Server(config: config(), logger: Logger(label: "test"))
            counters = server.counters
            server.beginShutdown()
            server.stop()
        }
        #expect(counters == nil)
    }

    @Test func aServerThatRanIsFreedAfterStop() throws {
        weak var counters: Counters?
        do {
            let server = try Server(config: config(), logger: Logger(label: "test"))
            counters = server.counters
            server.start()
            server.beginShutdown()
            server.stop()
        }
        #expect(counters == nil)
    }
}
