/// Percent-encoding (`%XX`, uppercase hex) of the bytes a rule does not keep: alstap's one encoder.
public enum PercentEncoding {
    /// Which bytes stay as they are; every other byte of the UTF-8 text becomes `%XX`.
    public struct Rule: Sendable {
        let keeps: @Sendable (UInt8) -> Bool

        /// A query parameter's value: RFC 3986's unreserved characters, `/` and `,` (a sub-delim
        /// that may appear literally in a query; `TapQuery` reads a comma as a repeat either way,
        /// since `RequestTarget` decodes `%2C` before the split).
        public static let queryValue = Rule { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"), UInt8(ascii: "/"), UInt8(ascii: ","):
                true
            default:
                false
            }
        }

        /// gRPC's `grpc-message` header (gRPC over HTTP/2): printable ASCII except `%`.
        public static let grpcMessage = Rule { byte in
            byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%")
        }
    }

    public static func encode(_ text: String, keeping rule: Rule) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if rule.keeps(byte) {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
