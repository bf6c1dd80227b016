/// Builds HTTP/1.1 response bytes.
public enum HTTP1Response {
    /// A complete response with a fixed body.
    public static func simple(status: Int, reason: String, contentType: String = "text/plain; charset=utf-8",
                              body: String, close: Bool = false, extraHeaders: [(String, String)] = []) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n"
        for (name, value) in extraHeaders { head += "\(name): \(value)\r\n" }
        if close { head += "Connection: close\r\n" }
        return Array((head + "\r\n" + body).utf8)
    }

    /// A complete response with a binary body.
    public static func bytes(status: Int, reason: String, contentType: String, body: [UInt8], close: Bool = false) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
        if close { head += "Connection: close\r\n" }
        return Array((head + "\r\n").utf8) + body
    }

    /// The head of a streamed response (chunked transfer encoding).
    public static func streamingHead(contentType: String, extraHeaders: [(String, String)] = []) -> [UInt8] {
        Array(("HTTP/1.1 200 OK\r\nContent-Type: \(contentType)\r\nTransfer-Encoding: chunked\r\n"
            + "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
            + extraHeaders.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n").utf8)
    }

    /// Writes `HEX\r\n` for a chunk of `count` bytes into `buffer` (at least 18 bytes); returns its length.
    public static func chunkHeader(_ count: Int, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let hex: StaticString = "0123456789abcdef"
        var digits = 1
        while count >> (4 * digits) != 0 { digits += 1 }
        for i in 0..<digits {
            buffer[digits - 1 - i] = hex.utf8Start[(count >> (4 * i)) & 0xF]
        }
        buffer[digits] = UInt8(ascii: "\r")
        buffer[digits + 1] = UInt8(ascii: "\n")
        return digits + 2
    }

    /// The last chunk of a chunked body.
    public static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)
}
