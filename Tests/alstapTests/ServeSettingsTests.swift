import ALSTapHTTP2
import ALSTapServer
import ALSTapSystem
import ArgumentParser
import Logging
import Testing

@testable import alstap

@Suite struct ServeSettingsTests {
    typealias Settings = (config: ServerConfig, logLevel: Logger.Level, grace: Double, drainDelay: Double)

    func settings(_ arguments: [String] = [], _ environment: Environment = [:]) throws -> Settings {
        try AlsTap.Serve.parse(arguments).settings(environment: environment)
    }

    /// The message `settings` fails with.
    func error(_ arguments: [String] = [], _ environment: Environment = [:]) -> String? {
        do {
            _ = try settings(arguments, environment)
            return nil
        } catch {
            return AlsTap.Serve.message(for: error)
        }
    }

    @Test func defaultsAreServerConfigsAndTheCLIsOwn() throws {
        let (config, level, grace, drainDelay) = try settings()
        #expect(drainDelay == 0)
        #expect(try settings(["--drain-delay", "1.5"]).drainDelay == 1.5)
        #expect(try settings([], ["ALSTAP_DRAIN_DELAY": "2"]).drainDelay == 2)
        #expect(try settings(["--max-stream-age", "0"]).config.maxStreamAgeMillis == 0)
        #expect(config.maxStreamAgeMillis == 1_800_000)
        #expect(try settings(["--ready-max-memory", "1048576"]).config.readyMaxMemoryBytes == 1 << 20)
        let server = ServerConfig()
        #expect(config.alsListen == ListenAddress(host: "0.0.0.0", port: 9001))
        #expect(config.httpListen == ListenAddress(host: "0.0.0.0", port: 9002))
        #expect(config.threads == ServeSettings.cores)
        #expect(config.maxMessageBytes == 4 << 20)
        #expect(config.decodeLimits == server.decodeLimits)
        #expect(config.http2.maxHeaderListSize == 64 << 10 && config.http2.maxConcurrentStreams == 1024)
        #expect(config.pairWindowMillis == 2_000 && config.mergeWindowMillis == 1_000 && config.headTimeoutMillis == 5_000)
        #expect(config.replayEntries == server.replayEntries && config.maxSubscribers == server.maxSubscribers)
        #expect(config.redactedHeaders == ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"])
        #expect(config.peers == nil && config.tapToken == nil && config.alsToken == nil)
        #expect(level == .info)
        #expect(grace == 5)
    }

    @Test func flagBeatsEnvironmentBeatsDefault() throws {
        let environment: Environment = ["ALSTAP_THREADS": "3", "ALSTAP_MAX_MESSAGE_BYTES": "2048",
                                        "ALSTAP_HTTP_LISTEN": "127.0.0.1:7002", "ALSTAP_LOG_LEVEL": "debug",
                                        "ALSTAP_SHUTDOWN_GRACE": "1.5"]
        let fromEnvironment = try settings([], environment)
        #expect(fromEnvironment.config.threads == 3)
        #expect(fromEnvironment.config.maxMessageBytes == 2048)
        #expect(fromEnvironment.config.httpListen == ListenAddress(host: "127.0.0.1", port: 7002))
        #expect(fromEnvironment.logLevel == .debug)
        #expect(fromEnvironment.grace == 1.5)

        let fromFlags = try settings(["--threads", "2", "--max-message-bytes", "4096", "--http-listen", "[::1]:7003",
                                      "--log-level", "error", "--shutdown-grace", "0"], environment)
        #expect(fromFlags.config.threads == 2)
        #expect(fromFlags.config.maxMessageBytes == 4096)
        #expect(fromFlags.config.httpListen == ListenAddress(host: "::1", port: 7003))
        #expect(fromFlags.logLevel == .error)
        #expect(fromFlags.grace == 0)
    }

    @Test func anEmptyVariableCountsAsUnset() throws {
        let config = try settings([], ["ALSTAP_THREADS": "", "ALSTAP_ALS_LISTEN": ""]).config
        #expect(config.threads == ServeSettings.cores)
        #expect(config.alsListen.port == 9001)
    }

    @Test func secondsBecomeMilliseconds() throws {
        let config = try settings(["--pair-window", "0.25", "--head-timeout", "0.05"], ["ALSTAP_MERGE_WINDOW": "0"]).config
        #expect(config.pairWindowMillis == 250)
        #expect(config.headTimeoutMillis == 50)
        #expect(config.mergeWindowMillis == 0)
    }

    @Test func listsPeersAndRedactedHeaders() throws {
        let config = try settings(["--redact-header", "X-Secret", "--redact-header", "Cookie"],
                                  ["ALSTAP_PEERS": "dns:alstap-headless:9002", "ALSTAP_REDACT_HEADERS": "a,b"]).config
        #expect(config.redactedHeaders == ["x-secret", "cookie"])
        #expect(config.peers == .dns(name: "alstap-headless", port: 9002))
        let fromEnvironment = try settings([], ["ALSTAP_REDACT_HEADERS": "X-A,x-b", "ALSTAP_PEERS": "a:1, [::1]:2"]).config
        #expect(fromEnvironment.redactedHeaders == ["x-a", "x-b"])
        #expect(fromEnvironment.peers == .list([HostPort(host: "a", port: 1), HostPort(host: "::1", port: 2)]))
    }

    @Test func badEnvironmentValuesSayWhich() {
        #expect(error([], ["ALSTAP_MAX_STREAMS": "many"]) == "ALSTAP_MAX_STREAMS=\"many\" is not a number")
        #expect(error([], ["ALSTAP_PAIR_WINDOW": "2s"]) == "ALSTAP_PAIR_WINDOW=\"2s\" is not a number")
        #expect(error([], ["ALSTAP_THREADS": "300"]) == "--threads must be in 1...256, not 300")
        #expect(error([], ["ALSTAP_ALS_LISTEN": "example.com:9001"])
            == "--als-listen: \"example.com:9001\" is not HOST:PORT (e.g. 0.0.0.0:9001, [::]:9001)")
        #expect(error([], ["ALSTAP_LOG_LEVEL": "loud"])
            == "--log-level must be trace, debug, info, notice, warning, error or critical")
        #expect(error([], ["ALSTAP_PEERS": "dns:nameonly"])
            == "--peers: \"dns:nameonly\" is not dns:NAME:PORT or HOST:PORT,HOST:PORT,...")
        #expect(error([], ["ALSTAP_TAP_TOKEN_FILE": "/nonexistent"]) == "cannot read --tap-token-file /nonexistent")
    }

    @Test func rangesAreInclusive() {
        #expect(error(["--max-message-bytes", "1024"]) == nil)
        #expect(error(["--max-message-bytes", "1023"]) == "--max-message-bytes must be in 1024...1073741824, not 1023")
        #expect(error(["--max-nesting-depth", "1000"]) == nil)
        #expect(error(["--max-nesting-depth", "1001"]) == "--max-nesting-depth must be in 2...1000, not 1001")
        #expect(error(["--pair-window", "0.01"]) == nil)
        #expect(error(["--pair-window", "0.001"]) == "--pair-window must be in 0.01...600.0, not 0.001")
        #expect(error(["--replay-entries", "0"]) == nil)
    }

    /// Each table entry's flag is the option it describes: a value past its range is reported under that name.
    @Test(arguments: [
        ServeSettings.threads, ServeSettings.maxMessageBytes, ServeSettings.subscriberQueue,
        ServeSettings.subscriberQueueBytes, ServeSettings.subscribersQueueBytes, ServeSettings.maxNestingDepth,
        ServeSettings.maxEntriesPerMessage, ServeSettings.maxUnpackedBytes, ServeSettings.maxBufferedMessageBytes,
        ServeSettings.maxStreamsTotal, ServeSettings.maxHeaderListBytes, ServeSettings.maxConnections,
        ServeSettings.maxStreams, ServeSettings.maxSubscribers, ServeSettings.pairTable, ServeSettings.pairTableBytes,
        ServeSettings.mergeEntries, ServeSettings.replayEntries, ServeSettings.replayBytes, ServeSettings.maxHeadBytes,
    ])
    func everyNumberFlagIsCheckedUnderItsName(_ setting: NumberSetting<Int>) {
        let past = setting.range.upperBound + 1
        #expect(error([setting.setting.flag, String(past)])
            == "\(setting.setting.flag) must be in \(setting.range), not \(past)")
        #expect(error([], [setting.setting.variable: String(past)])
            == "\(setting.setting.flag) must be in \(setting.range), not \(past)")
        #expect(error([setting.setting.flag, String(setting.range.lowerBound)]) == nil)
    }

    @Test func tokenFilesAreReadAndTrimmed() throws {
        try withTempFile("ingest-token\n") { path throws in
            let config = try settings(["--als-token-file", path], ["ALSTAP_TAP_TOKEN_FILE": path]).config
            #expect(config.alsToken == "ingest-token")
            #expect(config.tapToken == "ingest-token")
        }
        try withTempFile("\n\t ") { path throws in
            #expect(error(["--tap-token-file", path]) == "--tap-token-file \(path) is empty")
        }
    }
}
