// What a field mask is made of: the paths it accepts (`schema`, the top-level `JSONMember`s)
// and the tree of keys it is parsed into (`Member`, laid out by `Builder`).

extension FieldMask {
    /// A member of alstap's JSON lines: an object's sub-fields, or a map whose keys are data.
    struct Field: Sendable, ExpressibleByStringLiteral {
        let name: String
        let fields: [Field]
        let isMap: Bool

        init(_ name: String, _ fields: [Field] = [], isMap: Bool = false) {
            self.name = name
            self.fields = fields
            self.isMap = isMap
        }

        init(stringLiteral name: String) { self.init(name) }

        static func map(_ name: String) -> Field { Field(name, isMap: true) }
    }

    private static let certificate: [Field] = ["subject", "issuer", "subjectAltNames"]

    /// Every field of alstap's JSON lines, in their order: what `fields=` accepts (README, "JSON
    /// schema"). From `JSONLineEncoder`, `Reporter` (`logName`, `reporter`) and, last, the pair
    /// records' own (`PairRecordWriter`). A map's path takes one more segment, a key
    /// (`request.headers.x-b3-traceid`), matched exactly.
    static let schema: [Field] = [
        "time", "type", "logName",
        Field("reporter", ["nodeId", "cluster", "workload", "namespace", "pod", "clusterId", .map("labels")]),
        "direction",
        Field("source", ["address", "workload", "namespace", "pod", "service"]),
        Field("destination", ["address", "workload", "namespace", "pod", "service", "host", "port", "subset"]),
        Field("request", ["id", "method", "scheme", "authority", "port", "path", "originalPath", "userAgent", "referer",
                          "forwardedFor", "headerBytes", "bodyBytes", .map("headers")]),
        Field("response", ["code", "codeDetails", "flags", "headerBytes", "bodyBytes", .map("headers"), .map("trailers")]),
        Field("upstream", ["cluster", "host", "localAddress", "transportFailureReason", "attemptCount"]),
        Field("durations", ["lastRxByte", "firstUpstreamTxByte", "lastUpstreamTxByte", "firstUpstreamRxByte",
                            "lastUpstreamRxByte", "firstDownstreamTxByte", "lastDownstreamTxByte", "total"]),
        "route", "downstreamDirectRemoteAddress", "downstreamTransportFailureReason", "connectionTerminationDetails",
        "streamId",
        Field("tls", ["version", "cipherSuite", "sni", "sessionId", "ja3Fingerprint",
                      Field("localCertificate", certificate), Field("peerCertificate", certificate)]),
        "traceId", "spanId", "body", .map("customTags"), .map("filterState"),
        "protocol",
        Field("connection", ["receivedBytes", "sentBytes"]),
        "paired", "requestId", "overheadMs",
    ]
}

/// The top-level members of alstap's JSON lines, in `FieldMask.schema`'s order (a test holds the
/// two together): bit `rawValue` of a members set (`JSONMembers`).
public enum JSONMember: Int, CaseIterable, Sendable {
    case time, type, logName, reporter, direction, source, destination, request, response, upstream, durations
    case route, downstreamDirectRemoteAddress, downstreamTransportFailureReason, connectionTerminationDetails, streamId
    case tls, traceId, spanId, body, customTags, filterState, `protocol`, connection, paired, requestId, overheadMs
}

/// Which top-level members a JSON line holds, a bit per `JSONMember`: all of them, or while only
/// masked subscribers read JSON, those their masks keep (the decoder writes no others).
public struct JSONMembers: Sendable, Equatable {
    public let bits: UInt64

    public init(bits: UInt64) { self.bits = bits }

    public static let all = JSONMembers(bits: .max)

    public var isAll: Bool { bits == .max }

    @inline(__always)
    public func contains(_ member: JSONMember) -> Bool { bits & (1 << UInt64(member.rawValue)) != 0 }

    /// Every member of `other` is here too.
    public func covers(_ other: JSONMembers) -> Bool { other.bits & ~bits == 0 }
}

/// One member of a mask node.
struct Member {
    enum Kind {
        case whole  // copied as it is
        case object  // an object keeping `children` only
        case type  // a line's `type`: copied; `"pair"` makes the rest of the line a pair record
        case line  // a half's line in a pair record: the whole mask again
        case lines  // an array of halves' lines
    }

    let key: Range<Int>
    let kind: Kind
    var children: Range<Int> = 0..<0
}

/// Lays the mask's tree out: each node's members contiguous, after its children's.
struct Builder {
    var members: [Member] = []
    let keys = ByteWriter(capacity: 256)

    /// Escaped as the encoders escape keys, so a map key compares with a line's bytes as it is.
    func member(_ key: String, _ kind: Member.Kind) -> Member {
        let start = keys.count
        var key = key
        key.withUTF8 { keys.appendEscaped($0, mode: .json) }
        return Member(key: start..<keys.count, kind: kind)
    }

    mutating func node(_ level: [Member]) -> Range<Int> {
        let start = members.count
        members += level
        return start..<members.count
    }

    /// The members for segment `depth` of `paths` (sorted, none covering another).
    mutating func level(_ paths: ArraySlice<[String]>, depth: Int) -> [Member] {
        var level: [Member] = []
        var rest = paths
        while let first = rest.first {
            let name = first[depth]
            let group = rest.prefix { $0[depth] == name }
            rest = rest.dropFirst(group.count)
            if first.count == depth + 1 {
                level.append(member(name, .whole))
            } else {
                var object = member(name, .object)
                object.children = node(self.level(group, depth: depth + 1))
                level.append(object)
            }
        }
        return level
    }
}
