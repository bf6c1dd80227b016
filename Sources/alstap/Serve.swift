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
            abstract: "Receive Envoy access logs over gRPC and stream them live to tap subscribers.")

        @Option(help: ArgumentHelp("Address for Envoy's gRPC access log streams (env ALSTAP_ALS_LISTEN).",
                                   valueName: "host:port"))
        var alsListen: String?

        @Option(help: ArgumentHelp("Address for /tap, /healthz, /readyz, /stats (env ALSTAP_HTTP_LISTEN).",
                                   valueName: "host:port"))
        var httpListen: String?

        @Option(help: "Event loop threads (default: the number of cores).")
        var threads: Int?

        @Option(help: "Largest gRPC message accepted; larger ends the stream with RESOURCE_EXHAUSTED.")
        var maxMessageBytes = 4 << 20

        @Option(help: "Lines a tap subscriber may have queued before new lines are dropped for it.")
        var subscriberQueue = 8_192

        @Option(help: "trace, debug, info, notice, warning, error or critical.")
        var logLevel: Logger.Level = .info

        @Option(help: "Seconds a client has to send its request head (or HTTP/2 preface) before it is closed.")
        var headTimeout = 5.0

        @Option(help: "Seconds to let subscribers receive their final line on SIGTERM/SIGINT.")
        var shutdownGrace = 1.0

        func validate() throws {
            for (name, value) in [("--als-listen", resolvedALSListen), ("--http-listen", resolvedHTTPListen)]
            where ListenAddress(parsing: value) == nil {
                throw ValidationError("\(name): \"\(value)\" is not HOST:PORT (e.g. 0.0.0.0:9001, [::]:9001)")
            }
            if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be 1...256") }
            if maxMessageBytes < 1024 { throw ValidationError("--max-message-bytes must be at least 1024") }
            if headTimeout <= 0 { throw ValidationError("--head-timeout must be positive") }
            if subscriberQueue < 1 { throw ValidationError("--subscriber-queue must be at least 1") }
        }

        private var resolvedALSListen: String {
            alsListen ?? environment("ALSTAP_ALS_LISTEN") ?? "0.0.0.0:9001"
        }

        private var resolvedHTTPListen: String {
            httpListen ?? environment("ALSTAP_HTTP_LISTEN") ?? "0.0.0.0:9002"
        }

        func run() throws {
            let level = logLevel
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let logger = Logger(label: "alstap")

            var config = ServerConfig()
            config.alsListen = ListenAddress(parsing: resolvedALSListen)!
            config.httpListen = ListenAddress(parsing: resolvedHTTPListen)!
            config.threads = threads ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
            config.maxMessageBytes = maxMessageBytes
            config.subscriberQueueLines = subscriberQueue
            config.headTimeoutMillis = UInt64(headTimeout * 1000)

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
            logger.info("signal \(received): shutting down")
            server.beginShutdown()
            let graceMicros = useconds_t(max(0, shutdownGrace) * 1_000_000)
            usleep(graceMicros)
            server.stop()
            logger.info("stopped", metadata: ["entries": "\(server.counters.get(.entriesReceived))"])
        }
    }
}

private func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    let text = String(cString: value)
    return text.isEmpty ? nil : text
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
