import ALSTapServer
import ALSTapSystem
import ArgumentParser
import Logging
#if canImport(Glibc)
import Glibc
#endif

extension AlsTap {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Receive Envoy access logs over gRPC and stream them live to tap subscribers.",
            discussion: "Every option can also be set by the environment variable named in its help; a flag wins.")

        @Option(help: ArgumentHelp("Envoy's gRPC access log streams [ALSTAP_ALS_LISTEN, 0.0.0.0:9001].",
                                   valueName: "host:port"))
        var alsListen: String?

        @Option(help: ArgumentHelp("/tap, /metrics, /healthz, /readyz, /stats [ALSTAP_HTTP_LISTEN, 0.0.0.0:9002].",
                                   valueName: "host:port"))
        var httpListen: String?

        @Option(help: "Event loop threads [ALSTAP_THREADS, the number of cores].")
        var threads: Int?

        @Option(help: "Largest gRPC message; larger ends the stream with RESOURCE_EXHAUSTED [ALSTAP_MAX_MESSAGE_BYTES, 4194304].")
        var maxMessageBytes: Int?

        @Option(help: "Lines a subscriber may have queued before new ones are dropped for it [ALSTAP_SUBSCRIBER_QUEUE, 8192].")
        var subscriberQueue: Int?

        @Option(help: "Bytes of shared batches one subscriber's queue may hold [ALSTAP_SUBSCRIBER_QUEUE_BYTES, 16777216].")
        var subscriberQueueBytes: Int?

        @Option(help: "Bytes all subscribers' queues may hold together [ALSTAP_SUBSCRIBERS_QUEUE_BYTES, 67108864].")
        var subscribersQueueBytes: Int?

        @Option(help: "Nesting of Struct/ListValue metadata (JSON depth); deeper is INVALID_ARGUMENT [ALSTAP_MAX_NESTING_DEPTH, 100].")
        var maxNestingDepth: Int?

        @Option(help: "Log entries in one ALS message; more is RESOURCE_EXHAUSTED [ALSTAP_MAX_ENTRIES_PER_MESSAGE, 10000].")
        var maxEntriesPerMessage: Int?

        @Option(help: "Memory one ALS message may take unpacked, and its lines together [ALSTAP_MAX_UNPACKED_BYTES, 16777216].")
        var maxUnpackedBytes: Int?

        @Option(help: "Bytes of partly received gRPC messages, all streams together [ALSTAP_MAX_BUFFERED_MESSAGE_BYTES, 33554432].")
        var maxBufferedMessageBytes: Int?

        @Option(help: "HTTP/2 streams open at once on all connections; more are refused [ALSTAP_MAX_STREAMS_TOTAL, 16384].")
        var maxStreamsTotal: Int?

        @Option(help: "Decoded HTTP/2 request header list (SETTINGS_MAX_HEADER_LIST_SIZE) [ALSTAP_MAX_HEADER_LIST_BYTES, 65536].")
        var maxHeaderListBytes: Int?

        @Option(help: "Open connections, both listeners together; more are closed at once [ALSTAP_MAX_CONNECTIONS, 10000].")
        var maxConnections: Int?

        @Option(help: "Concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS) [ALSTAP_MAX_STREAMS, 1024].")
        var maxStreams: Int?

        @Option(help: "Tap subscribers; more get 503 [ALSTAP_MAX_SUBSCRIBERS, 1000].")
        var maxSubscribers: Int?

        @Option(help: "Seconds a request's half waits for its twin in `pair=1` taps [ALSTAP_PAIR_WINDOW, 2].")
        var pairWindow: Double?

        @Option(help: "Requests waiting for their twin, per event loop; more are emitted alone [ALSTAP_PAIR_TABLE, 50000].")
        var pairTable: Int?

        @Option(help: "Bytes of batches the requests waiting for their twin keep, all loops together [ALSTAP_PAIR_TABLE_BYTES, 33554432].")
        var pairTableBytes: Int?

        @Option(help: ArgumentHelp("The replicas a `scope=cluster` tap reads, this one included: dns:NAME:PORT (a headless Service, re-resolved every 5 s) or HOST:PORT,... [ALSTAP_PEERS].",
                                   valueName: "peers"))
        var peers: String?

        @Option(help: "Seconds a cluster tap holds entries to order them by time [ALSTAP_MERGE_WINDOW, 1].")
        var mergeWindow: Double?

        @Option(help: "Entries a cluster tap holds at most to order them [ALSTAP_MERGE_ENTRIES, 100].")
        var mergeEntries: Int?

        @Option(help: "Recent entries kept for `last=K` replays; 0: off [ALSTAP_REPLAY_ENTRIES, 2000].")
        var replayEntries: Int?

        @Option(help: "Bytes of messages kept for `last=K` replays [ALSTAP_REPLAY_BYTES, 16777216].")
        var replayBytes: Int?

        @Option(help: "Largest HTTP/1.1 request head; larger gets 431 [ALSTAP_MAX_HEAD_BYTES, 16384].")
        var maxHeadBytes: Int?

        @Option(help: "Seconds to send a request head or the HTTP/2 preface [ALSTAP_HEAD_TIMEOUT, 5].")
        var headTimeout: Double?

        @Option(help: "Seconds to drain on SIGTERM/SIGINT before exiting [ALSTAP_SHUTDOWN_GRACE, 5].")
        var shutdownGrace: Double?

        @Option(help: ArgumentHelp("Require `Authorization: Bearer <token>` on the HTTP listener (not /healthz, /readyz) [ALSTAP_TAP_TOKEN_FILE].",
                                   valueName: "path"))
        var tapTokenFile: String?

        @Option(help: ArgumentHelp("Require `authorization: Bearer <token>` in ALS streams' gRPC metadata [ALSTAP_ALS_TOKEN_FILE].",
                                   valueName: "path"))
        var alsTokenFile: String?

        @Option(help: ArgumentHelp("A header whose value is shown as [redacted] (repeatable) [ALSTAP_REDACT_HEADERS, comma-separated; default authorization, proxy-authorization, cookie, set-cookie, x-api-key].",
                                   valueName: "name"))
        var redactHeader: [String] = []

        @Option(help: "trace, debug, info, notice, warning, error or critical [ALSTAP_LOG_LEVEL, info].")
        var logLevel: String?

        func validate() throws {
            _ = try settings()
        }

        /// Flags, else environment, else defaults; every value checked.
        func settings() throws -> (config: ServerConfig, logLevel: Logger.Level, grace: Double) {
            var config = ServerConfig()
            func address(_ flag: String?, _ env: String, _ fallback: String, _ name: String) throws -> ListenAddress {
                let text = flag ?? environment(env) ?? fallback
                guard let parsed = ListenAddress(parsing: text) else {
                    throw ValidationError("\(name): \"\(text)\" is not HOST:PORT (e.g. 0.0.0.0:9001, [::]:9001)")
                }
                return parsed
            }
            func number<T: LosslessStringConvertible & Comparable>(
                _ flag: T?, _ env: String, _ fallback: T, _ name: String, _ range: ClosedRange<T>
            ) throws -> T {
                let value: T
                if let flag {
                    value = flag
                } else if let text = environment(env) {
                    guard let parsed = T(text) else { throw ValidationError("\(env)=\"\(text)\" is not a number") }
                    value = parsed
                } else {
                    value = fallback
                }
                guard range.contains(value) else { throw ValidationError("\(name) must be in \(range), not \(value)") }
                return value
            }
            config.alsListen = try address(alsListen, "ALSTAP_ALS_LISTEN", "0.0.0.0:9001", "--als-listen")
            config.httpListen = try address(httpListen, "ALSTAP_HTTP_LISTEN", "0.0.0.0:9002", "--http-listen")
            config.threads = try number(threads, "ALSTAP_THREADS", Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
                                        "--threads", 1...256)
            config.maxMessageBytes = try number(maxMessageBytes, "ALSTAP_MAX_MESSAGE_BYTES", 4 << 20,
                                                "--max-message-bytes", 1024...(1 << 30))
            config.subscriberQueueLines = try number(subscriberQueue, "ALSTAP_SUBSCRIBER_QUEUE", 8192,
                                                     "--subscriber-queue", 1...(1 << 24))
            config.subscriberQueueBytes = try number(subscriberQueueBytes, "ALSTAP_SUBSCRIBER_QUEUE_BYTES", 16 << 20,
                                                     "--subscriber-queue-bytes", 4096...(1 << 34))
            config.subscribersQueueBytes = try number(subscribersQueueBytes, "ALSTAP_SUBSCRIBERS_QUEUE_BYTES", 64 << 20,
                                                      "--subscribers-queue-bytes", 4096...(1 << 40))
            config.decodeLimits.maxDepth = try number(maxNestingDepth, "ALSTAP_MAX_NESTING_DEPTH", 100,
                                                      "--max-nesting-depth", 2...1000)
            config.decodeLimits.maxEntries = try number(maxEntriesPerMessage, "ALSTAP_MAX_ENTRIES_PER_MESSAGE", 10_000,
                                                        "--max-entries-per-message", 1...10_000_000)
            config.decodeLimits.maxUnpackedBytes = try number(maxUnpackedBytes, "ALSTAP_MAX_UNPACKED_BYTES", 16 << 20,
                                                              "--max-unpacked-bytes", 65536...(1 << 31))
            config.maxBufferedMessageBytes = try number(maxBufferedMessageBytes, "ALSTAP_MAX_BUFFERED_MESSAGE_BYTES",
                                                        32 << 20, "--max-buffered-message-bytes", 65536...(1 << 40))
            config.maxStreams = try number(maxStreamsTotal, "ALSTAP_MAX_STREAMS_TOTAL", 16384,
                                           "--max-streams-total", 1...10_000_000)
            config.http2.maxHeaderListSize = UInt32(try number(maxHeaderListBytes, "ALSTAP_MAX_HEADER_LIST_BYTES", 64 << 10,
                                                               "--max-header-list-bytes", 1024...(16 << 20)))
            config.maxConnections = try number(maxConnections, "ALSTAP_MAX_CONNECTIONS", 10_000,
                                               "--max-connections", 1...1_000_000)
            config.http2.maxConcurrentStreams = UInt32(try number(maxStreams, "ALSTAP_MAX_STREAMS", 1024,
                                                                  "--max-streams", 1...100_000))
            config.maxSubscribers = try number(maxSubscribers, "ALSTAP_MAX_SUBSCRIBERS", 1000,
                                               "--max-subscribers", 1...100_000)
            config.pairWindowMillis = UInt64(try number(pairWindow, "ALSTAP_PAIR_WINDOW", 2.0, "--pair-window",
                                                         0.01...600) * 1000)
            config.pairTableSize = try number(pairTable, "ALSTAP_PAIR_TABLE", 50_000, "--pair-table", 1...10_000_000)
            config.pairTableBytes = try number(pairTableBytes, "ALSTAP_PAIR_TABLE_BYTES", 32 << 20, "--pair-table-bytes",
                                               65536...(1 << 40))
            if let text = peers ?? environment("ALSTAP_PEERS") {
                guard let spec = PeerSpec(parsing: text) else {
                    throw ValidationError("--peers: \"\(text)\" is not dns:NAME:PORT or HOST:PORT,HOST:PORT,...")
                }
                config.peers = spec
            }
            config.mergeWindowMillis = UInt64(try number(mergeWindow, "ALSTAP_MERGE_WINDOW", 1.0, "--merge-window",
                                                          0...60) * 1000)
            config.mergeWindowEntries = try number(mergeEntries, "ALSTAP_MERGE_ENTRIES", 100, "--merge-entries",
                                                   0...1_000_000)
            config.replayEntries = try number(replayEntries, "ALSTAP_REPLAY_ENTRIES", 2_000,
                                              "--replay-entries", 0...10_000_000)
            config.replayBytes = try number(replayBytes, "ALSTAP_REPLAY_BYTES", 16 << 20,
                                            "--replay-bytes", 0...(1 << 40))
            config.maxHeadBytes = try number(maxHeadBytes, "ALSTAP_MAX_HEAD_BYTES", 16 * 1024,
                                             "--max-head-bytes", 256...(1 << 20))
            config.headTimeoutMillis = UInt64(try number(headTimeout, "ALSTAP_HEAD_TIMEOUT", 5.0,
                                                         "--head-timeout", 0.05...3600) * 1000)
            let grace = try number(shutdownGrace, "ALSTAP_SHUTDOWN_GRACE", 5.0, "--shutdown-grace", 0...3600)
            if let path = tapTokenFile ?? environment("ALSTAP_TAP_TOKEN_FILE") {
                config.tapToken = try readToken(path, flag: "--tap-token-file")
            }
            if let path = alsTokenFile ?? environment("ALSTAP_ALS_TOKEN_FILE") {
                config.alsToken = try readToken(path, flag: "--als-token-file")
            }
            let redacted = !redactHeader.isEmpty ? redactHeader
                : environment("ALSTAP_REDACT_HEADERS").map { $0.split(separator: ",").map(String.init) }
                ?? ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"]
            config.redactedHeaders = redacted.map { $0.lowercased() }
            let levelText = logLevel ?? environment("ALSTAP_LOG_LEVEL") ?? "info"
            guard let level = Logger.Level(rawValue: levelText) else {
                throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical")
            }
            return (config, level, grace)
        }

        private func readToken(_ path: String, flag: String) throws -> String {
            guard let file = fopen(path, "r") else { throw ValidationError("cannot read \(flag) \(path)") }
            defer { fclose(file) }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = fread(&chunk, 1, chunk.count, file)
                if count <= 0 { break }
                bytes += chunk[..<count]
            }
            let token = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: " \t\r\n")
            guard !token.isEmpty else { throw ValidationError("\(flag) \(path) is empty") }
            return token
        }

        func run() throws {
            let (config, level, grace) = try settings()
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let logger = Logger(label: "alstap")

            // Signals are taken synchronously by this thread (sigwait); block them before the
            // loop threads start so those inherit the mask.
            var signals = sigset_t()
            sigemptyset(&signals)
            sigaddset(&signals, SIGINT)
            sigaddset(&signals, SIGTERM)
            pthread_sigmask(SIG_BLOCK, &signals, nil)
            signal(SIGPIPE, SIG_IGN)

            let server: Server
            do {
                server = try Server(config: config, logger: logger)
            } catch {
                logger.critical("cannot start: \(error)")
                throw ExitCode.failure
            }
            server.start()
            logger.info("alstap serving",
                        metadata: ["als": "\(config.alsListen.host):\(server.alsPort)",
                                   "http": "\(config.httpListen.host):\(server.httpPort)",
                                   "threads": "\(config.threads)"])

            var received: Int32 = 0
            sigwait(&signals, &received)
            logger.info("signal \(received): draining for up to \(grace) s; a second signal exits at once")
            server.beginShutdown()
            // A second signal ends the wait early; otherwise the grace period or an idle server does.
            var timeout = timespec(tv_sec: 0, tv_nsec: 50_000_000)
            let deadline = monotonicNanos() + UInt64(grace * 1e9)
            while monotonicNanos() < deadline && !server.isDrained {
                if sigtimedwait(&signals, nil, &timeout) > 0 {
                    logger.info("second signal: exiting now")
                    break
                }
            }
            server.stop()
            logger.info("stopped", metadata: ["entries": "\(server.counters.entriesReceived)"])
        }
    }
}

func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    let text = String(cString: value)
    return text.isEmpty ? nil : text
}
