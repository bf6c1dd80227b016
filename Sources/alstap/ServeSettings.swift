import ALSTapALS
import ALSTapHTTP2
import ALSTapServer
import ALSTapSystem
import ArgumentParser
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Where a `serve` option's value comes from: its flag, else its environment variable, else its
/// default. The option's help and the lookup read the same table entry.
struct Setting: Sendable {
    /// As error messages name it (`--max-streams`).
    let flag: String
    let variable: String
    /// The default as the help shows it; nil: none (the option is off unless set).
    let shownDefault: String?

    /// "`text` [VARIABLE, default]."
    func help(_ text: String, valueName: String? = nil) -> ArgumentHelp {
        ArgumentHelp("\(text) [\(variable)\(shownDefault.map { ", " + $0 } ?? "")].", valueName: valueName)
    }

    /// The flag's value, else the environment's; nil when neither is set.
    func text(_ flagValue: String?, _ environment: Environment) -> String? {
        flagValue ?? environment[variable]
    }
}

/// A numeric `serve` option: a `Setting` with a default and a range.
struct NumberSetting<Value: LosslessStringConvertible & Comparable & Sendable>: Sendable {
    let setting: Setting
    let fallback: Value
    let range: ClosedRange<Value>

    init(_ flag: String, _ variable: String, _ fallback: Value, _ range: ClosedRange<Value>, shown: String? = nil) {
        setting = Setting(flag: flag, variable: variable, shownDefault: shown ?? Self.shown(fallback))
        self.fallback = fallback
        self.range = range
    }

    func help(_ text: String) -> ArgumentHelp { setting.help(text) }

    /// The flag, else the environment, else the default; checked against the range.
    func value(_ flagValue: Value?, _ environment: Environment) throws(ValidationError) -> Value {
        let value: Value
        if let flagValue {
            value = flagValue
        } else if let text = environment[setting.variable] {
            guard let parsed = Value(text) else { throw ValidationError("\(setting.variable)=\"\(text)\" is not a number") }
            value = parsed
        } else {
            value = fallback
        }
        guard range.contains(value) else { throw ValidationError("\(setting.flag) must be in \(range), not \(value)") }
        return value
    }

    /// Whole seconds print without a fraction ("2", not "2.0").
    private static func shown(_ value: Value) -> String {
        if let seconds = value as? Double, seconds == seconds.rounded() { return String(Int(seconds)) }
        return String(value)
    }
}

/// `alstap serve`'s options: every default comes from `ServerConfig()`, except the CLI's own
/// (threads, shutdown grace, log level).
enum ServeSettings {
    static let server = ServerConfig()
    /// One loop per core (ServerConfig's own default is one loop, for embedding and tests).
    static let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    static let defaultLogLevel = Logger.Level.info
    static let logLevels = "trace, debug, info, notice, warning, error or critical"

    static let alsListen = Setting(flag: "--als-listen", variable: "ALSTAP_ALS_LISTEN",
                                   shownDefault: server.alsListen.description)
    static let httpListen = Setting(flag: "--http-listen", variable: "ALSTAP_HTTP_LISTEN",
                                    shownDefault: server.httpListen.description)
    static let threads = NumberSetting("--threads", "ALSTAP_THREADS", cores, 1...256, shown: "the number of cores")
    static let maxMessageBytes = NumberSetting("--max-message-bytes", "ALSTAP_MAX_MESSAGE_BYTES",
                                               server.maxMessageBytes, 1024...(1 << 30))
    static let subscriberQueue = NumberSetting("--subscriber-queue", "ALSTAP_SUBSCRIBER_QUEUE",
                                               server.subscriberQueueLines, 1...(1 << 24))
    static let subscriberQueueBytes = NumberSetting("--subscriber-queue-bytes", "ALSTAP_SUBSCRIBER_QUEUE_BYTES",
                                                    server.subscriberQueueBytes, 4096...(1 << 34))
    static let subscribersQueueBytes = NumberSetting("--subscribers-queue-bytes", "ALSTAP_SUBSCRIBERS_QUEUE_BYTES",
                                                     server.subscribersQueueBytes, 4096...(1 << 40))
    static let maxNestingDepth = NumberSetting("--max-nesting-depth", "ALSTAP_MAX_NESTING_DEPTH",
                                               server.decodeLimits.maxDepth, 2...1000)
    static let maxEntriesPerMessage = NumberSetting("--max-entries-per-message", "ALSTAP_MAX_ENTRIES_PER_MESSAGE",
                                                    server.decodeLimits.maxEntries, 1...10_000_000)
    static let maxUnpackedBytes = NumberSetting("--max-unpacked-bytes", "ALSTAP_MAX_UNPACKED_BYTES",
                                                server.decodeLimits.maxUnpackedBytes, 65536...(1 << 31))
    static let maxBufferedMessageBytes = NumberSetting("--max-buffered-message-bytes", "ALSTAP_MAX_BUFFERED_MESSAGE_BYTES",
                                                       server.maxBufferedMessageBytes, 65536...(1 << 40))
    static let maxStreamsTotal = NumberSetting("--max-streams-total", "ALSTAP_MAX_STREAMS_TOTAL",
                                               server.maxStreams, 1...10_000_000)
    static let maxHeaderListBytes = NumberSetting("--max-header-list-bytes", "ALSTAP_MAX_HEADER_LIST_BYTES",
                                                  Int(server.http2.maxHeaderListSize), 1024...(16 << 20))
    static let maxConnections = NumberSetting("--max-connections", "ALSTAP_MAX_CONNECTIONS",
                                              server.maxConnections, 1...1_000_000)
    static let maxStreams = NumberSetting("--max-streams", "ALSTAP_MAX_STREAMS",
                                          Int(server.http2.maxConcurrentStreams), 1...100_000)
    static let maxSubscribers = NumberSetting("--max-subscribers", "ALSTAP_MAX_SUBSCRIBERS",
                                              server.maxSubscribers, 1...100_000)
    static let topGroups = NumberSetting("--top-groups", "ALSTAP_TOP_GROUPS", server.topGroups, 1...1_000_000)
    static let topBytes = NumberSetting("--top-bytes", "ALSTAP_TOP_BYTES", server.topBytes, 65536...(1 << 34))
    static let pairWindow = NumberSetting("--pair-window", "ALSTAP_PAIR_WINDOW",
                                          Double(server.pairWindowMillis) / 1000, 0.01...600)
    static let pairTable = NumberSetting("--pair-table", "ALSTAP_PAIR_TABLE", server.pairTableSize, 1...10_000_000)
    static let pairTableBytes = NumberSetting("--pair-table-bytes", "ALSTAP_PAIR_TABLE_BYTES",
                                              server.pairTableBytes, 65536...(1 << 40))
    static let peers = Setting(flag: "--peers", variable: "ALSTAP_PEERS", shownDefault: nil)
    static let mergeWindow = NumberSetting("--merge-window", "ALSTAP_MERGE_WINDOW",
                                           Double(server.mergeWindowMillis) / 1000, 0...60)
    static let mergeEntries = NumberSetting("--merge-entries", "ALSTAP_MERGE_ENTRIES",
                                            server.mergeWindowEntries, 0...1_000_000)
    static let replayEntries = NumberSetting("--replay-entries", "ALSTAP_REPLAY_ENTRIES",
                                             server.replayEntries, 0...10_000_000)
    static let replayBytes = NumberSetting("--replay-bytes", "ALSTAP_REPLAY_BYTES", server.replayBytes, 0...(1 << 40))
    static let maxHeadBytes = NumberSetting("--max-head-bytes", "ALSTAP_MAX_HEAD_BYTES",
                                            server.maxHeadBytes, 256...(1 << 20))
    static let headTimeout = NumberSetting("--head-timeout", "ALSTAP_HEAD_TIMEOUT",
                                           Double(server.headTimeoutMillis) / 1000, 0.05...3600)
    static let shutdownGrace = NumberSetting("--shutdown-grace", "ALSTAP_SHUTDOWN_GRACE", 5.0, 0...3600)
    static let drainDelay = NumberSetting("--drain-delay", "ALSTAP_DRAIN_DELAY", 0.0, 0...3600)
    static let maxStreamAge = NumberSetting("--max-stream-age", "ALSTAP_MAX_STREAM_AGE",
                                            Double(server.maxStreamAgeMillis) / 1000, 0...(7 * 86_400))
    static let readyMaxMemory = NumberSetting("--ready-max-memory", "ALSTAP_READY_MAX_MEMORY",
                                              Memory.cgroupLimitBytes().map { $0 / 10 * 9 } ?? 0, 0...(1 << 44),
                                              shown: "90 % of the cgroup's memory limit; without one, 0: none")
    static let tapTokenFile = Setting(flag: "--tap-token-file", variable: "ALSTAP_TAP_TOKEN_FILE", shownDefault: nil)
    static let alsTokenFile = Setting(flag: "--als-token-file", variable: "ALSTAP_ALS_TOKEN_FILE", shownDefault: nil)
    static let redactHeaders = Setting(flag: "--redact-header", variable: "ALSTAP_REDACT_HEADERS",
                                       shownDefault: "comma-separated; default "
                                           + server.redactedHeaders.joined(separator: ", "))
    static let logLevel = Setting(flag: "--log-level", variable: "ALSTAP_LOG_LEVEL",
                                  shownDefault: defaultLogLevel.rawValue)
}
