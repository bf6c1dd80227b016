/// A request target split into its path and decoded query parameters (in order, repeats kept).
public struct RequestTarget: Sendable, Equatable {
    public let path: String
    public let query: [QueryParameter]

    public struct QueryParameter: Sendable, Equatable {
        public let name: String
        public let value: String
    }

    public init(_ target: String) {
        guard let question = target.firstIndex(of: "?") else {
            path = target
            query = []
            return
        }
        path = String(target[..<question])
        query = target[target.index(after: question)...].split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return QueryParameter(name: Self.percentDecoded(parts[0]),
                                  value: parts.count > 1 ? Self.percentDecoded(parts[1]) : "")
        }
    }

    /// Decodes `%XX` and `+`; a malformed escape is kept as written.
    static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), utf8.count >= 2,
                      let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
