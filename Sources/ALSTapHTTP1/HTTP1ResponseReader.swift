/// Reads a streamed HTTP/1.1 response incrementally: the head, then the body with chunked
/// transfer-encoding (or Content-Length, or until the connection ends) removed. No I/O.
public struct HTTP1ResponseReader {
    public enum Event {
        case head(status: Int)
        /// Body bytes, valid only during the callback.
        case body(UnsafeRawBufferPointer)
    }

    public struct Error: Swift.Error, Equatable, Sendable {
        public let message: String
    }

    private enum State {
        case head
        case chunkSize
        case chunkData(remaining: Int)
        /// The CRLF after a chunk's data; `seen` of its bytes arrived.
        case chunkEnd(seen: Int)
        case trailers
        case fixed(remaining: Int)
        case untilClose
        case done
    }

    private let maxHeadBytes: Int
    private var state = State.head
    /// A head, chunk-size line or trailer line gathered across reads.
    private var line: [UInt8] = []

    public init(maxHeadBytes: Int = 16 * 1024) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// True once the whole body was read (the last chunk, or Content-Length bytes).
    public var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ onEvent: (Event) -> Void) throws(Error) {
        var offset = 0
        while offset < bytes.count {
            switch state {
            case .head:
                offset = try gatherLine(bytes, from: offset, until: [13, 10, 13, 10])
                guard endsWith([13, 10, 13, 10]) else { return }
                let status = try startBody()
                line.removeAll()
                onEvent(.head(status: status))
            case .chunkSize:
                offset = try gatherLine(bytes, from: offset, until: [13, 10])
                guard endsWith([13, 10]) else { return }
                let digits = line.dropLast(2).prefix { $0 != UInt8(ascii: ";") }
                guard !digits.isEmpty, digits.count <= 8,
                      let size = Int(String(decoding: digits, as: UTF8.self)[...].trimmingSpaces(), radix: 16) else {
                    throw Error(message: "bad chunk size line")
                }
                line.removeAll()
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let take = min(remaining, bytes.count - offset)
                onEvent(.body(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + take)])))
                offset += take
                state = remaining == take ? .chunkEnd(seen: 0) : .chunkData(remaining: remaining - take)
            case .chunkEnd(let seen):
                guard bytes[offset] == (seen == 0 ? 13 : 10) else { throw Error(message: "chunk not followed by CRLF") }
                offset += 1
                state = seen == 0 ? .chunkEnd(seen: 1) : .chunkSize
            case .trailers:
                offset = try gatherLine(bytes, from: offset, until: [13, 10])
                guard endsWith([13, 10]) else { return }
                let empty = line.count == 2
                line.removeAll()
                if empty { state = .done }
            case .fixed(let remaining):
                let take = min(remaining, bytes.count - offset)
                onEvent(.body(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + take)])))
                offset += take
                state = remaining == take ? .done : .fixed(remaining: remaining - take)
            case .untilClose:
                onEvent(.body(UnsafeRawBufferPointer(rebasing: bytes[offset...])))
                offset = bytes.count
            case .done:
                throw Error(message: "bytes after the end of the response")
            }
        }
    }

    /// Appends bytes to `line` up to and including `terminator`; returns the new offset.
    private mutating func gatherLine(_ bytes: UnsafeRawBufferPointer, from start: Int, until terminator: [UInt8]) throws(Error) -> Int {
        var offset = start
        while offset < bytes.count {
            line.append(bytes[offset])
            offset += 1
            if endsWith(terminator) { return offset }
            if line.count > maxHeadBytes { throw Error(message: "response head or chunk line over \(maxHeadBytes) bytes") }
        }
        return offset
    }

    private func endsWith(_ suffix: [UInt8]) -> Bool {
        line.count >= suffix.count && line.suffix(suffix.count).elementsEqual(suffix)
    }

    /// Parses the status line and the framing headers; sets the body state.
    private mutating func startBody() throws(Error) -> Int {
        let text = String(decoding: line, as: UTF8.self)
        let lines = text.split(separator: "\r\n", omittingEmptySubsequences: true)
        guard let statusLine = lines.first, statusLine.hasPrefix("HTTP/1."),
              let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
            throw Error(message: "not an HTTP/1.x response")
        }
        var chunked = false
        var length: Int?
        for header in lines.dropFirst() {
            guard let colon = header.firstIndex(of: ":") else { continue }
            let name = header[..<colon].lowercased()
            let value = header[header.index(after: colon)...].trimmingSpaces()
            if name == "transfer-encoding" { chunked = value.lowercased().contains("chunked") }
            if name == "content-length" { length = Int(value) }
        }
        state = chunked ? .chunkSize : length.map { $0 == 0 ? .done : .fixed(remaining: $0) } ?? .untilClose
        return status
    }
}
