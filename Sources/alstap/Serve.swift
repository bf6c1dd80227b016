import ALSTapALS
import ALSTapHTTP2
import ALSTapMetrics
import ALSTapServer
import ALSTapSystem
import ArgumentParser
import Logging
#if canImport(Glibc)
import Glibc
#endif

extension AlsTap {
    struct Serve: ParsableCommand {
        /// Each option's variable, default and range.
        private typealias S = ServeSettings

        static let configuration = CommandConfiguration(
            abstract: "Receive Envoy access logs over gRPC and stream them live to tap subscribers.",
            discussion: "Every option can also be set by the environment variable named in its help; a flag wins.")

        @Option(help: S.alsListen.help("Ingest: Envoy's gRPC access logs (ALS) and OTLP logs (gRPC, HTTP)", valueName: "host:port"))
        var alsListen: String?

        @Option(help: S.httpListen.help("/tap, /metrics, /healthz, /readyz, /stats", valueName: "host:port"))
        var httpListen: String?

        @Option(help: S.threads.help("Event loop threads"))
        var threads: Int?

        @Option(help: S.maxMessageBytes.help("Largest gRPC message; larger ends the stream with RESOURCE_EXHAUSTED"))
        var maxMessageBytes: Int?

        @Option(help: S.subscriberQueue.help("Lines a subscriber may have queued before new ones are dropped for it"))
        var subscriberQueue: Int?

        @Option(help: S.subscriberQueueBytes.help("Bytes of shared batches one subscriber's queue may hold"))
        var subscriberQueueBytes: Int?

        @Option(help: S.subscribersQueueBytes.help("Bytes all subscribers' queues may hold together"))
        var subscribersQueueBytes: Int?

        @Option(help: S.maxNestingDepth.help("Nesting of Struct/ListValue metadata (JSON depth); deeper is INVALID_ARGUMENT"))
        var maxNestingDepth: Int?

        @Option(help: S.maxEntriesPerMessage.help("Log entries in one ALS message; more is RESOURCE_EXHAUSTED"))
        var maxEntriesPerMessage: Int?

        @Option(help: S.maxUnpackedBytes.help("Memory one ALS message may take unpacked, and its lines together"))
        var maxUnpackedBytes: Int?

        @Option(help: S.maxBufferedMessageBytes.help("Bytes of partly received gRPC messages, all streams together"))
        var maxBufferedMessageBytes: Int?

        @Option(help: S.maxStreamsTotal.help("HTTP/2 streams open at once on all connections; more are refused"))
        var maxStreamsTotal: Int?

        @Option(help: S.maxHeaderListBytes.help("Decoded HTTP/2 request header list (SETTINGS_MAX_HEADER_LIST_SIZE)"))
        var maxHeaderListBytes: Int?

        @Option(help: S.maxConnections.help("Open connections, both listeners together; more are closed at once"))
        var maxConnections: Int?

        @Option(help: S.maxStreams.help("Concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS)"))
        var maxStreams: Int?

        @Option(help: S.maxSubscribers.help("Tap subscribers; more get 503"))
        var maxSubscribers: Int?

        @Option(help: S.topGroups.help("Groups one /top aggregate keeps; beyond, entries go to its `other` row"))
        var topGroups: Int?

        @Option(help: S.topBytes.help("Bytes all /top aggregates hold together; beyond, new groups go to their `other` rows"))
        var topBytes: Int?

        @Option(help: S.pairWindow.help("Seconds a request's half waits for its twin in `pair=1` taps"))
        var pairWindow: Double?

        @Option(help: S.pairTable.help("Requests waiting for their twin, per event loop; more are emitted alone"))
        var pairTable: Int?

        @Option(help: S.pairTableBytes.help("Bytes of batches the requests waiting for their twin keep, all loops together"))
        var pairTableBytes: Int?

        @Option(help: S.peers.help("The replicas a `scope=cluster` tap reads, this one included: dns:NAME:PORT (a headless Service, re-resolved every 5 s) or HOST:PORT,...",
                                   valueName: "peers"))
        var peers: String?

        @Option(help: S.mergeWindow.help("Seconds a cluster tap holds entries to order them by time"))
        var mergeWindow: Double?

        @Option(help: S.mergeEntries.help("Entries a cluster tap holds at most to order them"))
        var mergeEntries: Int?

        @Option(help: S.replayEntries.help("Recent entries kept for `last=K` replays; 0: off"))
        var replayEntries: Int?

        @Option(help: S.replayBytes.help("Bytes of messages kept for `last=K` replays"))
        var replayBytes: Int?

        @Option(help: S.maxHeadBytes.help("Largest HTTP/1.1 request head; larger gets 431"))
        var maxHeadBytes: Int?

        @Option(help: S.headTimeout.help("Seconds to send a request head or the HTTP/2 preface"))
        var headTimeout: Double?

        @Option(help: S.shutdownGrace.help("Seconds to drain on SIGTERM/SIGINT before exiting"))
        var shutdownGrace: Double?

        @Option(help: S.drainDelay.help("Seconds between SIGTERM and the drain during which only /readyz fails, so a load balancer stops sending new streams first (Kubernetes: the preStop delay does this)"))
        var drainDelay: Double?

        @Option(help: S.maxStreamAge.help("Seconds (give or take 10 %) before an ingest stream is ended, between messages, so Envoy reconnects to any replica; 0: never"))
        var maxStreamAge: Double?

        @Option(help: S.readyMaxMemory.help("/readyz fails while the resident set is over this many bytes"))
        var readyMaxMemory: Int?

        @Option(help: S.tapTokenFile.help("Require `Authorization: Bearer <token>` on the HTTP listener (not /healthz, /readyz)",
                                          valueName: "path"))
        var tapTokenFile: String?

        @Option(help: S.alsTokenFile.help("Require `authorization: Bearer <token>` on ingest (ALS and OTLP)",
                                          valueName: "path"))
        var alsTokenFile: String?

        @Option(help: S.redactHeaders.help("A header whose value is shown as [redacted] (repeatable)", valueName: "name"))
        var redactHeader: [String] = []

        @Option(help: S.logLevel.help(S.logLevels))
        var logLevel: String?

        func validate() throws {
            _ = try settings()
        }

        /// Flags, else the environment, else defaults; every value checked.
        func settings(environment env: Environment = .process) throws -> (config: ServerConfig, logLevel: Logger.Level, grace: Double,
                                                                        drainDelay: Double) {
            func address(_ flag: String?, _ setting: Setting, _ fallback: ListenAddress) throws -> ListenAddress {
                guard let text = setting.text(flag, env) else { return fallback }
                guard let parsed = ListenAddress(parsing: text) else {
                    throw ValidationError("\(setting.flag): \"\(text)\" is not HOST:PORT (e.g. 0.0.0.0:9001, [::]:9001)")
                }
                return parsed
            }
            func millis(_ seconds: Double) -> UInt64 { UInt64(seconds * 1000) }
            var config = S.server
            config.alsListen = try address(alsListen, S.alsListen, S.server.alsListen)
            config.httpListen = try address(httpListen, S.httpListen, S.server.httpListen)
            config.threads = try S.threads.value(threads, env)
            config.maxMessageBytes = try S.maxMessageBytes.value(maxMessageBytes, env)
            config.subscriberQueueLines = try S.subscriberQueue.value(subscriberQueue, env)
            config.subscriberQueueBytes = try S.subscriberQueueBytes.value(subscriberQueueBytes, env)
            config.subscribersQueueBytes = try S.subscribersQueueBytes.value(subscribersQueueBytes, env)
            config.decodeLimits.maxDepth = try S.maxNestingDepth.value(maxNestingDepth, env)
            config.decodeLimits.maxEntries = try S.maxEntriesPerMessage.value(maxEntriesPerMessage, env)
            config.decodeLimits.maxUnpackedBytes = try S.maxUnpackedBytes.value(maxUnpackedBytes, env)
            config.maxBufferedMessageBytes = try S.maxBufferedMessageBytes.value(maxBufferedMessageBytes, env)
            config.maxStreams = try S.maxStreamsTotal.value(maxStreamsTotal, env)
            config.http2.maxHeaderListSize = UInt32(try S.maxHeaderListBytes.value(maxHeaderListBytes, env))
            config.maxConnections = try S.maxConnections.value(maxConnections, env)
            config.http2.maxConcurrentStreams = UInt32(try S.maxStreams.value(maxStreams, env))
            config.maxSubscribers = try S.maxSubscribers.value(maxSubscribers, env)
            config.topGroups = try S.topGroups.value(topGroups, env)
            config.topBytes = try S.topBytes.value(topBytes, env)
            config.pairWindowMillis = millis(try S.pairWindow.value(pairWindow, env))
            config.pairTableSize = try S.pairTable.value(pairTable, env)
            config.pairTableBytes = try S.pairTableBytes.value(pairTableBytes, env)
            if let text = S.peers.text(peers, env) {
                guard let spec = PeerSpec(parsing: text) else {
                    throw ValidationError("--peers: \"\(text)\" is not dns:NAME:PORT or HOST:PORT,HOST:PORT,...")
                }
                config.peers = spec
            }
            config.mergeWindowMillis = millis(try S.mergeWindow.value(mergeWindow, env))
            config.mergeWindowEntries = try S.mergeEntries.value(mergeEntries, env)
            config.replayEntries = try S.replayEntries.value(replayEntries, env)
            config.replayBytes = try S.replayBytes.value(replayBytes, env)
            config.maxHeadBytes = try S.maxHeadBytes.value(maxHeadBytes, env)
            config.headTimeoutMillis = millis(try S.headTimeout.value(headTimeout, env))
            let grace = try S.shutdownGrace.value(shutdownGrace, env)
            let drainDelay = try S.drainDelay.value(self.drainDelay, env)
            config.maxStreamAgeMillis = millis(try S.maxStreamAge.value(maxStreamAge, env))
            config.readyMaxMemoryBytes = try S.readyMaxMemory.value(readyMaxMemory, env)
            if let path = S.tapTokenFile.text(tapTokenFile, env) {
                config.tapToken = try TokenFile.read(path, flag: S.tapTokenFile.flag)
            }
            if let path = S.alsTokenFile.text(alsTokenFile, env) {
                config.alsToken = try TokenFile.read(path, flag: S.alsTokenFile.flag)
            }
            if !redactHeader.isEmpty {
                config.redactedHeaders = redactHeader.map { $0.lowercased() }
            } else if let list = env[S.redactHeaders.variable] {
                config.redactedHeaders = list.split(separator: ",").map { $0.lowercased() }
            }
            var level = S.defaultLogLevel
            if let text = S.logLevel.text(logLevel, env) {
                guard let parsed = Logger.Level(rawValue: text) else {
                    throw ValidationError("--log-level must be \(S.logLevels)")
                }
                level = parsed
            }
            return (config, level, grace, drainDelay)
        }

        func run() throws {
            let (config, level, grace, drainDelay) = try settings()
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
            var timeout = timespec(tv_sec: 0, tv_nsec: 50_000_000)
            if drainDelay > 0 {
                logger.info("signal \(received): not ready; draining in \(drainDelay) s")
                server.announceDrain()
                let start = monotonicNanos()
                while monotonicNanos() - start < UInt64(drainDelay * 1e9) {
                    if sigtimedwait(&signals, nil, &timeout) > 0 { break }  // a second signal: drain now
                }
            }
            logger.info("signal \(received): draining for up to \(grace) s; a second signal exits at once")
            server.beginShutdown(graceSeconds: grace)
            // A second signal ends the wait early; otherwise the grace period or an idle server does.
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
