import ALSTapALS
import ALSTapHTTP1

/// A tap request parsed from `/tap`'s query: output format and filter.
public struct TapQuery: Sendable, Equatable {
    public var format = OutputFormat.json
    /// nil: every entry.
    public var filter: TapFilter?
    /// Send this many of the most recent matching entries first (`last=K`).
    public var last = 0
    /// `since=T` (Unix seconds): replay every kept entry received at or after T (with `last`, the
    /// most recent `last` of them). A cluster tap resumes a replica's stream with it.
    public var sinceMicros: Int64?
    /// false (`follow=0`): end the stream after the replay.
    public var follow = true
    /// Entries per second at most (`max_rps=R`); 0: unlimited.
    public var maxEntriesPerSecond = 0.0
    /// `fields=…`: only these JSON fields (nil: all).
    public var fields: FieldMask?
    /// `pair=1`: both sidecars' entries of a request as one record.
    public var pair = false
    /// `scope=cluster`: every replica's entries (`--peers`), not only this one's.
    public var clusterScope = false
    /// The filter's parameters as a query string (`ns=demo&code=5xx`), to push down to peers.
    public var filterQuery = ""

    /// A bad query: the message names the parameter (answered with 400).
    public struct Error: Swift.Error, Equatable, Sendable {
        public let message: String
    }

    /// Parameters alstap knows; anything else is an error, never ignored.
    public static let parameters = ["format", "scope", "last", "since", "follow", "max_rps", "pair", "fields"] + filterParameters

    /// The filters; each may also be negated (`!method=GET`: none of these).
    public static let filterParameters = [
        "ns", "workload", "pod", "destination", "destination_ns", "method", "path", "authority", "scheme", "direction",
        "code", "flags", "min_duration", "max_duration", "min_bytes", "max_bytes", "type", "reporter", "log_name",
        "trace_id", "header", "user_agent", "label", "reporter_label", "errors", "probes",
    ]

    /// Values that may hold commas themselves: a comma does not separate repeats in them (a
    /// label selector's commas AND its requirements).
    static let unsplitParameters: Set<String> = ["header", "user_agent", "label", "reporter_label"]

    public init() {}

    /// Parses query parameters. A parameter may repeat (OR); different parameters AND.
    /// Comma-separated values count as repeats (`code=500,503`). A negated filter (`!name`) is a
    /// clause of its own: none of its values.
    public init(_ parameters: [RequestTarget.QueryParameter]) throws(Error) {
        var values: [String: [String]] = [:]
        var order: [String] = []
        for parameter in parameters {
            let negated = parameter.name.hasPrefix("!")
            let name = negated ? String(parameter.name.dropFirst()) : parameter.name
            guard Self.parameters.contains(name) else {
                throw Error(message: "unknown parameter \"\(parameter.name)\"; known: \(Self.parameters.joined(separator: ", "))")
            }
            guard !negated || Self.filterParameters.contains(name) else {
                throw Error(message: "\(name) is not a filter: it cannot be negated (\"\(parameter.name)\")")
            }
            let parts = Self.unsplitParameters.contains(name) ? (parameter.value.isEmpty ? [] : [parameter.value])
                : parameter.value.split(separator: ",", omittingEmptySubsequences: true).map(String.init)
            guard !parts.isEmpty else { throw Error(message: "parameter \"\(parameter.name)\" needs a value") }
            if values[parameter.name] == nil { order.append(parameter.name) }
            values[parameter.name, default: []] += parts
        }
        var clauses: [TapFilter.Clause] = []
        for name in order {
            let list = values[name]!
            switch name {
            case "last":
                guard list.count == 1, let value = Int(list[0]), value >= 0 else {
                    throw Error(message: "bad value for last: \"\(list.joined(separator: ","))\" (a count, 0 or more)")
                }
                last = value
            case "since":
                guard list.count == 1, let micros = Self.unixMicros(list[0]) else {
                    throw Error(message: "bad value for since: \"\(list.joined(separator: ","))\" (Unix seconds, e.g. 1764633600.5)")
                }
                sinceMicros = micros
            case "follow", "pair":
                guard list.count == 1, let value = Self.boolean(list[0]) else {
                    throw Error(message: "bad value for \(name): \"\(list.joined(separator: ","))\" (1 or 0)")
                }
                if name == "pair" { pair = value } else { follow = value }
            case "max_rps":
                guard list.count == 1, let value = Double(list[0]), value >= 0, value.isFinite else {
                    throw Error(message: "bad value for max_rps: \"\(list.joined(separator: ","))\" (entries per second, 0: unlimited)")
                }
                maxEntriesPerSecond = value
            case "format":
                guard list.count == 1,
                      let format = ["json": OutputFormat.json, "ndjson": .json, "text": .text, "sse": .sse, "als": .als,
                                    "capture": .capture][list[0]] else {
                    throw Error(message: "bad value for format: \"\(list.joined(separator: ","))\" (json, text, sse, capture or als)")
                }
                self.format = format
            case "scope":
                guard list.count == 1, let cluster = ["local": false, "cluster": true][list[0]] else {
                    throw Error(message: "bad value for scope: \"\(list.joined(separator: ","))\" (local or cluster)")
                }
                clusterScope = cluster
            case "fields":
                do {
                    fields = try FieldMask(parsing: list.joined(separator: ","))
                } catch {
                    throw Error(message: "bad value for fields: \(error.message)")
                }
            default:
                let negated = name.hasPrefix("!")
                let clause = try Self.clause(negated ? String(name.dropFirst()) : name, list)
                clauses.append(negated ? Self.negation(of: clause) : clause)
                for value in list {
                    filterQuery += (filterQuery.isEmpty ? "" : "&") + name + "=" + PercentEncoding.encode(value, keeping: .queryValue)
                }
            }
        }
        filter = clauses.isEmpty ? nil : TapFilter(clauses: clauses)
        if format == .als && (pair || clusterScope || fields != nil) {
            throw Error(message: "format=als carries single entries of this replica: not with pair=1, scope=cluster or fields")
        }
        if format == .capture && (pair || fields != nil) {
            throw Error(message: "format=capture keeps whole entries as received: pair and fields apply when it is read (alstap tap -r FILE)")
        }
        if format == .capture && clusterScope {
            throw Error(message: "format=capture records one replica's entries with their receive times: not with scope=cluster")
        }
        if fields != nil && format == .text {
            throw Error(message: "fields selects JSON fields: format=json or sse, not text")
        }
    }

    /// `errors=0` is already a negation: `!errors=0` means `errors=1`.
    private static func negation(of clause: TapFilter.Clause) -> TapFilter.Clause {
        if case .not(let inner) = clause { return inner }
        return .not(clause)
    }

    /// `since=`'s text for µs since the epoch: Unix seconds with six decimals.
    public static func sinceText(_ micros: Int64) -> String {
        let fraction = String(micros % 1_000_000)
        return "\(micros / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    /// Unix seconds with up to six decimals, exactly (`1764633600.000042`); nil if malformed.
    static func unixMicros(_ text: String) -> Int64? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let digits = { (part: Substring) in !part.isEmpty && part.allSatisfy { $0.isASCII && $0.isNumber } }
        guard digits(parts[0]), parts[0].count <= 11, let seconds = Int64(parts[0]) else { return nil }
        guard parts.count == 2 else { return seconds * 1_000_000 }
        guard digits(parts[1]), parts[1].count <= 6, let fraction = Int64(parts[1] + String(repeating: "0", count: 6 - parts[1].count))
        else { return nil }
        return seconds * 1_000_000 + fraction
    }

    static func boolean(_ value: String) -> Bool? {
        ["1": true, "true": true, "0": false, "false": false][value]
    }

    private static func clause(_ name: String, _ values: [String]) throws(Error) -> TapFilter.Clause {
        func bad(_ value: String, _ expected: String) -> Error {
            Error(message: "bad value for \(name): \"\(value)\" (\(expected))")
        }
        switch name {
        case "ns", "destination_ns":
            // A namespace name has no `/` (Kubernetes names are DNS labels): `ns=a/b` is a mistake.
            for value in values where value.contains("/") { throw bad(value, "a namespace name, without /") }
            let names = values.map { QualifiedName(namespace: nil, name: Array($0.utf8)) }
            return name == "ns" ? .either(.namespace, names) : .destination(.namespace, names)
        case "workload", "pod":
            var names: [QualifiedName] = []
            for value in values { names.append(try qualified(value, bad(value, "NAME or NAMESPACE/NAME"))) }
            return .either(name == "pod" ? .pod : .workload, names)
        case "destination", "reporter":
            var kind: TapFilter.Kind?
            var names: [QualifiedName] = []
            for value in values {
                let expected = name == "reporter" ? "workload/NAME or pod/NAME" : "ns/NAME, workload/NAME or pod/NAME"
                guard let slash = value.firstIndex(of: "/") else { throw bad(value, expected) }
                let kinds: [String: TapFilter.Kind] = name == "reporter" ? ["workload": .workload, "pod": .pod]
                    : ["ns": .namespace, "workload": .workload, "pod": .pod]
                guard let parsed = kinds[String(value[..<slash])], kind == nil || kind == parsed else {
                    throw bad(value, expected + ", one kind per parameter")
                }
                kind = parsed
                let rest = String(value[value.index(after: slash)...])
                if parsed == .namespace && rest.contains("/") { throw bad(value, "ns/NAME: a namespace has no namespace") }
                names.append(try qualified(rest, bad(value, expected)))
            }
            return name == "reporter" ? .reporter(kind!, names) : .destination(kind!, names)
        case "method":
            var mask: UInt16 = 0
            for value in values {
                guard let raw = methods.firstIndex(of: value.uppercased()) else {
                    throw bad(value, methods.dropFirst().joined(separator: ", "))
                }
                mask |= 1 << raw
            }
            return .methods(mask)
        case "path":
            for value in values where !value.hasPrefix("/") { throw bad(value, "a path prefix starting with /") }
            return .pathPrefix(values.map { Array($0.utf8) })
        case "authority":
            return .authority(values.map { Array($0.utf8) })
        case "scheme":
            return .scheme(values.map { Array($0.lowercased().utf8) })
        case "direction":
            var inbound = false
            var outbound = false
            for value in values {
                switch value {
                case "inbound", "in": inbound = true
                case "outbound", "out": outbound = true
                default: throw bad(value, "inbound, outbound, in or out")
                }
            }
            return .directions(inbound: inbound, outbound: outbound)
        case "code":
            var ranges: [ClosedRange<UInt16>] = []
            for value in values {
                guard let range = codeRange(value) else {
                    throw bad(value, "a code like 404, a range like 500-599, or a class like 5xx")
                }
                ranges.append(range)
            }
            return .codes(ranges)
        case "flags":
            var mask: UInt32 = 0
            for value in values {
                guard let number = ResponseFlagCodes.fieldNumber(of: value) else {
                    throw bad(value, "Envoy response flags such as UH, UF, URX, NR, DC")
                }
                mask |= 1 << (number - 1)
            }
            return .flags(mask)
        case "min_duration", "max_duration":
            guard values.count == 1, let micros = durationMicros(values[0]) else {
                throw bad(values.joined(separator: ","), "one duration such as 250ms, 1.5s, 100us")
            }
            return name == "min_duration" ? .minDurationMicros(micros) : .maxDurationMicros(micros)
        case "min_bytes", "max_bytes":
            guard values.count == 1, let bytes = byteCount(values[0]) else {
                throw bad(values.joined(separator: ","), "one size in bytes such as 512, 10k, 2M (k = 1024)")
            }
            return name == "min_bytes" ? .minBytes(bytes) : .maxBytes(bytes)
        case "header":
            var tests: [TapFilter.HeaderTest] = []
            for value in values {
                // NAME:VALUE (exact) or NAME (present); a value may hold colons itself.
                let colon = value.firstIndex(of: ":")
                let name = String(value[..<(colon ?? value.endIndex)]).lowercased()
                guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenByte) else {
                    throw bad(value, "NAME or NAME:VALUE, NAME a header name")
                }
                tests.append(TapFilter.HeaderTest(name: Array(name.utf8),
                                                  value: colon.map { Array(value[value.index(after: $0)...].utf8) }))
            }
            return .headers(tests)
        case "user_agent":
            return .userAgentPrefix(values.map { Array($0.utf8) })
        case "label", "reporter_label":
            var selectors: [TapFilter.LabelSelector] = []
            for value in values {
                guard let selector = labelSelector(value) else {
                    throw bad(value, "a selector such as app=reviews,version!=v1 (KEY=VALUE, KEY!=VALUE, KEY or !KEY, comma: and)")
                }
                selectors.append(selector)
            }
            return .labels(reporter: name == "reporter_label", selectors)
        case "errors", "probes":
            guard values.count == 1, let wanted = boolean(values[0]) else { throw bad(values.joined(separator: ","), "1 or 0") }
            let clause: TapFilter.Clause = name == "errors" ? .errors : .probes
            return wanted ? clause : .not(clause)
        case "type":
            guard values.count == 1, values[0] == "http" || values[0] == "tcp" else {
                throw bad(values.joined(separator: ","), "http or tcp")
            }
            return .type(isTCP: values[0] == "tcp")
        case "log_name":
            return .logName(values.map { Array($0.utf8) })
        case "trace_id":
            // OTLP records' trace ids, as the JSON's `traceId` writes them: 32 hex digits, lowercase.
            let ids = values.map { $0.lowercased() }
            guard let invalid = ids.first(where: { $0.utf8.count != 32 || !$0.utf8.allSatisfy(Self.isHexDigit) }) else {
                return .traceId(ids.map { Array($0.utf8) })
            }
            throw bad(invalid, "32 hexadecimal digits")
        default:
            throw Error(message: "unknown parameter \"\(name)\"")
        }
    }

    /// RFC 9110 token characters (header names).
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (97...122).contains(byte) || (65...90).contains(byte) || "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }

    /// `app=reviews,version!=v1,canary,!legacy`; nil when malformed.
    static func labelSelector(_ text: String) -> TapFilter.LabelSelector? {
        var requirements: [TapFilter.LabelSelector.Requirement] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let part = String(part)
            let requirement: TapFilter.LabelSelector.Requirement
            if let equals = part.firstIndex(of: "="), equals > part.startIndex, part[part.index(before: equals)] == "!" {
                requirement = .init(key: Array(part[..<part.index(before: equals)].utf8), .notEquals,
                                    value: Array(part[part.index(after: equals)...].utf8))
            } else if let equals = part.firstIndex(of: "=") {
                // `key==value` is kubectl's spelling of `key=value` too.
                var value = part[part.index(after: equals)...]
                if value.hasPrefix("=") { value = value.dropFirst() }
                requirement = .init(key: Array(part[..<equals].utf8), .equals, value: Array(value.utf8))
            } else if part.hasPrefix("!") {
                requirement = .init(key: Array(part.dropFirst().utf8), .absent)
            } else {
                requirement = .init(key: Array(part.utf8), .exists)
            }
            // Kubernetes' label syntax: a key is `[prefix/]name`, a value may be empty.
            guard (1...316).contains(requirement.key.count), requirement.value.count <= 63,
                  requirement.key.allSatisfy({ isLabelByte($0) || $0 == UInt8(ascii: "/") }),
                  requirement.value.allSatisfy(isLabelByte) else { return nil }
            requirements.append(requirement)
        }
        return requirements.isEmpty ? nil : TapFilter.LabelSelector(requirements)
    }

    /// Letters, digits, `-`, `_`, `.`: what Kubernetes label names and values are made of.
    private static func isLabelByte(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (97...122).contains(byte) || (65...90).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
    }

    /// `512`, `10k`, `2M`, `1G` (powers of 1024).
    public static func byteCount(_ text: String) -> UInt64? {
        let scales: [Character: UInt64] = ["k": 1 << 10, "K": 1 << 10, "m": 1 << 20, "M": 1 << 20, "g": 1 << 30, "G": 1 << 30]
        let scale = text.last.flatMap { scales[$0] } ?? 1
        guard let number = UInt64(scale == 1 ? text : String(text.dropLast())) else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: scale)
        return overflow ? nil : bytes
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    /// Index = RequestMethod raw value.
    static let methods = ["", "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]

    private static func qualified(_ value: String, _ error: Error) throws(Error) -> QualifiedName {
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else { throw error }
        return parts.count == 2 ? QualifiedName(namespace: Array(parts[0].utf8), name: Array(parts[1].utf8))
            : QualifiedName(namespace: nil, name: Array(parts[0].utf8))
    }

    static func codeRange(_ text: String) -> ClosedRange<UInt16>? {
        let value = text.lowercased()  // 5xx or 5XX
        if value.count == 3, value.hasSuffix("xx"), let digit = UInt16(value.prefix(1)), (1...5).contains(digit) {
            return (digit * 100)...(digit * 100 + 99)
        }
        let bounds = value.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(bounds.count), let low = UInt16(bounds[0]), let high = UInt16(bounds.last!),
              (100...599).contains(low), (100...599).contains(high), low <= high else { return nil }
        return low...high
    }

    /// `250ms`, `1.5s`, `100us`, `2m` in µs.
    static func durationMicros(_ value: String) -> Int64? {
        let units: [(String, Double)] = [("us", 1), ("µs", 1), ("ms", 1000), ("s", 1_000_000), ("m", 60_000_000)]
        for (suffix, scale) in units where value.hasSuffix(suffix) {
            // Int64(_:) traps beyond its range: refuse what it cannot hold (2^63 µs and up).
            guard let number = Double(value.dropLast(suffix.count)), number >= 0, number * scale < 0x1p63 else {
                return nil
            }
            return Int64(number * scale)
        }
        return nil
    }
}
