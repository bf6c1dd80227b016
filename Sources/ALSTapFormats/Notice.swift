import ALSTapALS

/// Why a subscriber missed entries (the `reason` of its `lost` lines).
public enum LostReason: String, CaseIterable, Sendable {
    /// It read too slowly: its queue, or its loop's hand-off, was full.
    case slow
    /// Its `max_rps` limit.
    case rate
}

/// A line of a tap stream that is not an entry. Written by `encoded(as:)` in every format and
/// read back by `init?(json:)` (a replica's notices reach a cluster tap as JSON in ALS frames).
public enum Notice: Equatable, Sendable {
    /// `count` entries were not sent, for `reason`.
    case lost(count: Int, reason: LostReason)
    /// alstap is shutting down: the stream ends after this line.
    case shutdown
    /// Something about one replica of a cluster tap (down, back, left the peer list).
    case peer(String, message: String)
    /// A replica's `last=K` replay is over; live entries follow (replicas' `format=als` only).
    case replayed

    /// The `type` field; also the SSE event name.
    public var type: String {
        switch self {
        case .lost: "lost"
        case .shutdown: "shutdown"
        case .peer: "notice"
        case .replayed: "replayed"
        }
    }

    /// The JSON object, without a newline. Strings from elsewhere (a peer's words) are escaped.
    public var json: String {
        switch self {
        case .lost(let count, let reason): "{\"type\":\"lost\",\"count\":\(count),\"reason\":\"\(reason.rawValue)\"}"
        case .shutdown: "{\"type\":\"shutdown\"}"
        case .peer(let peer, let message):
            "{\"type\":\"notice\",\"peer\":\"\(Self.escaped(peer, .json))\",\"message\":\"\(Self.escaped(message, .json))\"}"
        case .replayed: "{\"type\":\"replayed\"}"
        }
    }

    /// The `format=text` line, without a newline (empty: not shown in text).
    public var text: String {
        switch self {
        case .lost(let count, .slow): "# lost \(count) entries: this subscriber read too slowly"
        case .lost(let count, .rate): "# skipped \(count) entries over this subscriber's max_rps"
        case .shutdown: "# alstap is shutting down"
        case .peer(let peer, let message): "# peer \(Self.escaped(peer, .text)): \(Self.escaped(message, .text))"
        case .replayed: ""
        }
    }

    /// The bytes a subscriber of `format` gets: a JSON line, a text line, an SSE event named
    /// after the type, or a notice frame of the replica format.
    public func encoded(as format: OutputFormat) -> SharedBytes {
        switch format {
        case .json: SharedBytes(json + "\n")
        case .text: SharedBytes(text + "\n")
        case .als, .capture: ReplicaFrames.notice(json: json)
        case .sse: SSE.event(type, data: json)
        }
    }

    private static func escaped(_ text: String, _ mode: EscapeMode) -> String {
        let writer = ByteWriter(capacity: text.utf8.count + 16)
        var copy = text
        copy.withUTF8 { writer.appendEscaped($0, mode: mode) }
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// Reads a notice from its JSON (a peer's bytes: anything else, or malformed, is nil).
    public init?(json: String) {
        guard let object = FlatJSON.parse(json), case .string(let type)? = object["type"] else { return nil }
        switch type {
        case "lost":
            guard case .number(let count)? = object["count"], count >= 0,
                  case .string(let reason)? = object["reason"], let lost = LostReason(rawValue: reason) else { return nil }
            self = .lost(count: count, reason: lost)
        case "shutdown": self = .shutdown
        case "replayed": self = .replayed
        case "notice":
            guard case .string(let peer)? = object["peer"], case .string(let message)? = object["message"] else { return nil }
            self = .peer(peer, message: message)
        default: return nil
        }
    }
}

/// A one-level JSON object of strings and non-negative integers: all a notice holds. Not a
/// general JSON parser; anything else is refused.
enum FlatJSON {
    enum Value: Equatable {
        case string(String)
        case number(Int)
    }

    static let maxBytes = 4096

    static func parse(_ text: String) -> [String: Value]? {
        let bytes = Array(text.utf8)
        guard bytes.count <= maxBytes else { return nil }
        var i = 0
        func skipSpace() { while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 } }
        func expect(_ byte: UInt8) -> Bool {
            skipSpace()
            guard i < bytes.count, bytes[i] == byte else { return false }
            i += 1
            return true
        }
        func string() -> String? {
            guard expect(UInt8(ascii: "\"")) else { return nil }
            var out: [UInt8] = []
            while i < bytes.count {
                let byte = bytes[i]
                i += 1
                switch byte {
                case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard i < bytes.count else { return nil }
                    let escape = bytes[i]
                    i += 1
                    switch escape {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard i + 4 <= bytes.count,
                              let code = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16) else { return nil }
                        i += 4
                        // Surrogates are not rebuilt: a notice's escapes are control bytes.
                        out += Array(String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8)
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    default: return nil
                    }
                default:
                    guard byte >= 0x20 else { return nil }
                    out.append(byte)
                }
            }
            return nil
        }
        func number() -> Int? {
            skipSpace()
            let start = i
            while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]), i - start < 18 { i += 1 }
            return i > start ? Int(String(decoding: bytes[start..<i], as: UTF8.self)) : nil
        }
        guard expect(UInt8(ascii: "{")) else { return nil }
        var object: [String: Value] = [:]
        if expect(UInt8(ascii: "}")) { return object }
        repeat {
            guard let key = string(), expect(UInt8(ascii: ":")) else { return nil }
            skipSpace()
            guard i < bytes.count else { return nil }
            if bytes[i] == UInt8(ascii: "\"") {
                guard let value = string() else { return nil }
                object[key] = .string(value)
            } else {
                guard let value = number() else { return nil }
                object[key] = .number(value)
            }
        } while expect(UInt8(ascii: ","))
        guard expect(UInt8(ascii: "}")) else { return nil }
        skipSpace()
        return i == bytes.count ? object : nil
    }
}
