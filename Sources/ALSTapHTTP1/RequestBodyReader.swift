/// Reads a request body as it arrives, by `Content-Length` or `Transfer-Encoding: chunked`
/// (RFC 9112 §7.1), into memory up to a bound. Pure: bytes in, how many it used and whether the
/// body is complete out. Chunk extensions and trailer fields are read past and dropped.
public struct RequestBodyReader {
    public enum Framing: Equatable, Sendable {
        case length(Int)
        case chunked
    }

    public enum Outcome: Equatable, Sendable {
        case needMore
        case complete
        /// The body (all of it, or its chunks so far) is over the bound.
        case tooLarge
        case malformed(String)
    }

    private enum State {
        case data(remaining: Int)
        /// A chunk-size line (with any extension), up to its LF.
        case sizeLine
        /// The CRLF after a chunk's data.
        case dataEnd
        /// Trailer lines, until an empty one.
        case trailers
        case done
    }

    public private(set) var body: [UInt8] = []
    private let limit: Int
    private let chunked: Bool
    private var state: State
    private var line: [UInt8] = []
    /// Longest chunk-size or trailer line read (a size line is a few bytes; trailers are bounded too).
    private static let maxLineBytes = 4096

    public init(_ framing: Framing, limit: Int) {
        self.limit = limit
        switch framing {
        case .length(let length):
            chunked = false
            state = .data(remaining: length)
            body.reserveCapacity(min(length, limit))
        case .chunked:
            chunked = true
            state = .sizeLine
        }
    }

    /// Takes what it can of `bytes`; `consumed` bytes are used (the rest belong to the next request).
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) -> (consumed: Int, outcome: Outcome) {
        if case .data(let remaining) = state, !chunked, body.count + remaining > limit { return (0, .tooLarge) }
        var i = 0
        while i < bytes.count {
            switch state {
            case .data(let remaining):
                let take = min(remaining, bytes.count - i)
                body.append(contentsOf: bytes[i..<(i + take)])
                i += take
                if take == remaining {
                    state = chunked ? .dataEnd : .done
                    if !chunked { return (i, .complete) }
                } else {
                    state = .data(remaining: remaining - take)
                }
            case .sizeLine, .trailers, .dataEnd:
                let byte = bytes[i]
                i += 1
                guard byte == UInt8(ascii: "\n") else {
                    line.append(byte)
                    if line.count > Self.maxLineBytes { return (i, .malformed("chunk line over \(Self.maxLineBytes) bytes")) }
                    continue
                }
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                defer { line.removeAll(keepingCapacity: true) }
                switch state {
                case .dataEnd:
                    guard line.isEmpty else { return (i, .malformed("chunk data longer than its size")) }
                    state = .sizeLine
                case .sizeLine:
                    guard let size = Self.chunkSize(line) else { return (i, .malformed("bad chunk size")) }
                    if size == 0 {
                        state = .trailers
                    } else {
                        guard size <= limit - body.count else { return (i, .tooLarge) }
                        state = .data(remaining: size)
                    }
                default:  // trailers
                    if line.isEmpty {
                        state = .done
                        return (i, .complete)
                    }
                }
            case .done:
                return (i, .complete)
            }
        }
        if case .done = state { return (i, .complete) }
        if !chunked, case .data(0) = state { return (i, .complete) }
        return (i, .needMore)
    }

    /// `1*HEXDIG [ ";" extensions ]` (surrounding spaces and tabs allowed, as some senders put them).
    private static func chunkSize(_ line: [UInt8]) -> Int? {
        var value = 0
        var digits = 0
        for byte in line {
            let digit: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = Int(byte - UInt8(ascii: "A")) + 10
            case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"):
                return digits > 0 ? value : nil
            default: return nil
            }
            guard digits < 15 else { return nil }  // 15 hex digits: far past any bound, short of overflow
            value = value << 4 | digit
            digits += 1
        }
        return digits > 0 ? value : nil
    }
}
