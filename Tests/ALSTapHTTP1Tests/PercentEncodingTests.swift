import Testing

@testable import ALSTapHTTP1

@Suite struct PercentEncodingTests {
    @Test func queryValueKeepsUnreservedSlashAndComma() {
        let kept = "AZaz09-._~/,"
        #expect(PercentEncoding.encode(kept, keeping: .queryValue) == kept)
    }

    @Test func queryValueEscapesDelimitersSpacesAndUTF8() {
        #expect(PercentEncoding.encode("a b&c=d?e#f+g%h", keeping: .queryValue) == "a%20b%26c%3Dd%3Fe%23f%2Bg%25h")
        #expect(PercentEncoding.encode("h:1", keeping: .queryValue) == "h%3A1")
        // UTF-8 bytes one by one, uppercase hex; control bytes get a leading zero.
        #expect(PercentEncoding.encode("é\n\u{7F}", keeping: .queryValue) == "%C3%A9%0A%7F")
    }

    @Test func queryValueRoundTripsThroughRequestTarget() {
        let value = "ns/a b+c,d&e=f%g/é"
        let target = RequestTarget("/tap?v=" + PercentEncoding.encode(value, keeping: .queryValue))
        #expect(target.query == [RequestTarget.QueryParameter(name: "v", value: value)])
    }

    @Test func grpcMessageKeepsPrintableASCIIButPercent() {
        let printable = String(decoding: (0x20...0x7E).filter { $0 != 0x25 }.map { UInt8($0) }, as: UTF8.self)
        #expect(PercentEncoding.encode(printable, keeping: .grpcMessage) == printable)
        #expect(PercentEncoding.encode("100% sure", keeping: .grpcMessage) == "100%25 sure")
    }

    @Test func grpcMessageEscapesControlBytesAndUTF8() {
        #expect(PercentEncoding.encode("a\tb\r\n\u{7F}", keeping: .grpcMessage) == "a%09b%0D%0A%7F")
        #expect(PercentEncoding.encode("größe", keeping: .grpcMessage) == "gr%C3%B6%C3%9Fe")
        #expect(PercentEncoding.encode("", keeping: .grpcMessage) == "")
    }
}
