import ALSTapALS
import ALSTapHTTP1

/// What a `/top` row groups by.
public enum TopGrouping: String, Sendable, CaseIterable {
    /// source → destination
    case edge
    /// edge + method + authority + route
    case route
    case destination
    case source
    case reporter
}

/// A `/top` request: every `/tap` filter (and `format`, `pair`, `scope`), plus the grouping,
/// the window, the interval between snapshots and a row limit.
public struct TopQuery: Sendable, Equatable {
    public var tap = TapQuery()
    public var by = TopGrouping.edge
    public var windowSeconds = 10
    public var intervalMillis: UInt64 = 1_000
    /// Rows per snapshot, most requests first; 0: all.
    public var limit = 0

    public static let parameters = ["by", "window", "interval", "limit"]
    /// `/tap` parameters that mean nothing for aggregates.
    static let refused = ["last", "since", "max_rps", "fields"]
    public static let windowRange = 1...900
    public static let intervalMillisRange: ClosedRange<UInt64> = 100...60_000

    public init() {}

    public var follow: Bool { tap.follow }

    public init(_ parameters: [RequestTarget.QueryParameter]) throws(TapQuery.Error) {
        var rest: [RequestTarget.QueryParameter] = []
        var seen: Set<String> = []
        for parameter in parameters {
            if Self.refused.contains(parameter.name) {
                throw TapQuery.Error(message: "\(parameter.name) is a /tap parameter; /top aggregates the live window")
            }
            guard Self.parameters.contains(parameter.name) else {
                rest.append(parameter)
                continue
            }
            guard seen.insert(parameter.name).inserted else {
                throw TapQuery.Error(message: "parameter \"\(parameter.name)\" given twice")
            }
            let value = parameter.value
            switch parameter.name {
            case "by":
                guard let by = TopGrouping(rawValue: value) else {
                    throw TapQuery.Error(message: "bad value for by: \"\(value)\" (\(TopGrouping.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                self.by = by
            case "window":
                guard let micros = Self.seconds(value), micros % 1_000_000 == 0,
                      Self.windowRange.contains(Int(micros / 1_000_000)) else {
                    throw TapQuery.Error(message: "bad value for window: \"\(value)\" (whole seconds from 1s to 15m, such as 10s or 5m)")
                }
                windowSeconds = Int(micros / 1_000_000)
            case "interval":
                guard let micros = Self.seconds(value), Self.intervalMillisRange.contains(UInt64(micros / 1000)) else {
                    throw TapQuery.Error(message: "bad value for interval: \"\(value)\" (100ms to 60s, such as 1s)")
                }
                intervalMillis = UInt64(micros / 1000)
            default:
                guard let limit = Int(value), limit >= 0 else {
                    throw TapQuery.Error(message: "bad value for limit: \"\(value)\" (rows, 0: all)")
                }
                self.limit = limit
            }
        }
        tap = try TapQuery(rest)
        if tap.format.encoding == .als {
            throw TapQuery.Error(message: "bad value for format: \"\(tap.format == .als ? "als" : "capture")\" (json, text or sse for /top)")
        }
    }

    /// A duration with a unit, or bare seconds (`10` = `10s`), in µs.
    private static func seconds(_ value: String) -> Int64? {
        if let whole = Int64(value), whole >= 0, whole < 1_000_000 { return whole * 1_000_000 }
        return TapQuery.durationMicros(value)
    }
}
