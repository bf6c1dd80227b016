/// A `host:port` as flags and URLs write it: `HOST:PORT` or `[IPV6]:PORT`, and with a default
/// port also `HOST` or `[IPV6]` alone. The host is kept as written (without brackets), not resolved.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// nil when malformed: an empty host, a port that is not 0...65535 in decimal digits, or no
    /// port and no default. An IPv6 address is best bracketed; without brackets its port is
    /// after the last colon, so it must have one.
    public init?(parsing text: String, defaultPort: UInt16? = nil) {
        let host: Substring
        let portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if rest.isEmpty {
                portText = nil
            } else {
                guard rest.first == ":" else { return nil }
                portText = rest.dropFirst()
            }
        } else if let colon = text.firstIndex(of: ":") {
            // Several colons without brackets: an IPv6 address, its port after the last one
            // (`:::9001`, `::1:9002`), as alstap has always read them.
            let split = text[text.index(after: colon)...].contains(":") ? text.lastIndex(of: ":")! : colon
            host = text[..<split]
            portText = text[text.index(after: split)...]
            if split != colon, !host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) { return nil }
        } else {
            host = text[...]
            portText = nil
        }
        guard !host.isEmpty, !host.contains("["), !host.contains("]") else { return nil }
        if let portText {
            guard !portText.isEmpty, portText.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                  let port = UInt16(portText) else { return nil }
            self.init(host: String(host), port: port)
        } else {
            guard let defaultPort else { return nil }
            self.init(host: String(host), port: defaultPort)
        }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
