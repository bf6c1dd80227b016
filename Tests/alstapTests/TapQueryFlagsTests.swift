import ArgumentParser
import Testing

@testable import alstap

@Suite struct TapQueryFlagsTests {
    func query(_ arguments: [String]) throws -> String {
        try AlsTap.Tap.parse(arguments).query
    }

    /// The message `alstap tap ARGUMENTS` exits with (nil: the arguments are fine).
    func error(_ arguments: [String]) -> String? {
        do {
            _ = try AlsTap.Tap.parse(arguments)
            return nil
        } catch {
            return AlsTap.Tap.message(for: error)
        }
    }

    @Test func noFlagsAsksForEverythingAsJSON() throws {
        #expect(try query([]) == "format=json")
    }

    @Test func resourceForms() throws {
        #expect(try query(["ns/demo"]) == "format=json&ns=demo")
        #expect(try query(["workload/reviews-v1"]) == "format=json&workload=default/reviews-v1")
        #expect(try query(["--ns", "shop", "workload/reviews-v1"]) == "format=json&workload=shop/reviews-v1")
        #expect(try query(["pod/web-0", "--ns", "shop"]) == "format=json&pod=shop/web-0")
        // --ns qualifies workloads and pods only: a namespace resource is its own.
        #expect(try query(["ns/demo", "--ns", "shop"]) == "format=json&ns=demo")
    }

    @Test func destinationsKeepTheirKind() throws {
        #expect(try query(["--destination", "workload/db"]) == "format=json&destination=workload/db")
        #expect(try query(["--destination-ns", "data"]) == "format=json&destination_ns=data")
    }

    @Test func repeatedFlagsRepeatTheParameter() throws {
        #expect(try query(["--method", "GET", "--method", "POST", "--path", "/a", "--path", "/b"])
            == "format=json&method=GET&method=POST&path=/a&path=/b")
        #expect(try query(["--authority", "a", "--authority", "b", "--scheme", "http", "--scheme", "https"])
            == "format=json&authority=a&authority=b&scheme=http&scheme=https")
    }

    @Test func responseCodes() throws {
        #expect(try query(["--response-code", "500,599"]) == "format=json&code=500-599")
        #expect(try query(["--response-code", "404"]) == "format=json&code=404")
        #expect(try query(["--response-code", "500,"]) == "format=json&code=500")
    }

    @Test func valuesAreEscapedButSlashesAndCommasStay() throws {
        #expect(try query(["--path", "/a b?c&d=e+f%"]) == "format=json&path=/a%20b%3Fc%26d%3De%2Bf%25")
        #expect(try query(["--authority", "h:1"]) == "format=json&authority=h%3A1")
        #expect(try query(["--flags", "UH,UF"]) == "format=json&flags=UH,UF")
        #expect(try query(["--ns", "é", "pod/p"]) == "format=json&pod=%C3%A9/p")
    }

    @Test func replayAndStreamFlags() throws {
        #expect(try query(["--last", "5", "--no-follow"]) == "format=json&last=5&follow=0")
        #expect(try query(["--pair", "--cluster", "--max-rps", "2.5"]) == "format=json&pair=1&scope=cluster&max_rps=2.5")
        #expect(try query(["--direction", "out", "--min-duration", "250ms"]) == "format=json&direction=out&min_duration=250ms")
    }

    /// Every filter flag at once, in the order the query writes them (what alstap 1.x sent).
    @Test func everyFlagAtOnce() throws {
        let arguments = ["workload/rev-v1", "--ns", "my ns", "--destination", "pod/a+b", "--destination-ns", "d",
                         "--method", "GET", "--method", "POST", "--path", "/a b?c&d", "--authority", "h:1",
                         "--scheme", "https", "--direction", "in", "--response-code", "500,599", "--flags", "UH,UF",
                         "--min-duration", "250ms", "--last", "5", "--no-follow", "--pair", "--cluster",
                         "--max-rps", "2.5", "--max", "3", "-o", "wide"]
        #expect(try query(arguments) == "format=json&workload=my%20ns/rev-v1&destination=pod/a%2Bb&destination_ns=d"
            + "&method=GET&method=POST&path=/a%20b%3Fc%26d&authority=h%3A1&scheme=https&direction=in&code=500-599"
            + "&flags=UH,UF&min_duration=250ms&last=5&follow=0&pair=1&scope=cluster&max_rps=2.5")
    }

    @Test func badValuesNameTheFlag() {
        #expect(error(["-o", "yaml"]) == "-o must be text, json, wide or har")
        #expect(error(["svc/x"]) == "resource must be ns/NAME, workload/NAME or pod/NAME, not \"svc/x\"")
        #expect(error(["ns/"]) == "resource must be ns/NAME, workload/NAME or pod/NAME, not \"ns/\"")
        #expect(error(["--destination", "db"]) == "--destination must be ns/NAME, workload/NAME or pod/NAME")
        #expect(error(["--direction", "up"]) == "--direction must be in or out")
        #expect(error(["--max", "0"]) == "--max must be at least 1")
        #expect(error(["--last=-1"]) == "--last must be 0 or more")
        #expect(error(["--max-rps=-1"]) == "--max-rps must be 0 (unlimited) or more")
        #expect(error(["--server", "https://x:1"]) == "--server must look like http://HOST:PORT, not \"https://x:1\"")
        #expect(error(["--server", "http://x:port"]) == "--server must look like http://HOST:PORT, not \"http://x:port\"")
    }

    /// Capture flags: each with what it needs, and a HAR document with an end.
    @Test func captureFlagsGoTogether() {
        #expect(error(["-r", "a", "-w", "b"]) == "-r reads a capture, -w records one: not both")
        #expect(error(["-r", "a", "--last", "5"]) == "-r reads a file: --last, --no-follow, --cluster, --max-rps and --duration are for a server")
        #expect(error(["--since", "10:05"]) == "--since and --until are for -r")
        #expect(error(["-r", "a", "--since", "25:00"])?.hasPrefix("--since: HH:MM") == true)
        #expect(error(["-r", "a", "--until", "yesterday"])?.hasPrefix("--until: HH:MM") == true)
        #expect(error(["-q"]) == "--max-size and -q are for -w")
        #expect(error(["-w", "a", "--max-size", "lots"]) == "--max-size: a size such as 100M")
        #expect(error(["--duration", "soon"]) == "--duration: a duration such as 10m")
        #expect(error(["-o", "har"]) == "-o har writes one document: give it an end (-r, --max, --duration or --no-follow)")
        #expect(error(["-r", "a", "-o", "har", "--since", "10:05:00.5", "--until", "2026-12-01T10:07:30Z"]) == nil)
    }

    @Test(arguments: ["1,2,3", "5xx", "500-599", ","])
    func badResponseCodes(_ value: String) {
        #expect(error(["--response-code", value]) == "--response-code takes one code or two (a range): 404 or 500,599")
    }

    @Test func serverIsFlagThenEnvironmentThenTheServeDefault() throws {
        let environment: Environment = ["ALSTAP_SERVER": "http://env:1"]
        #expect(try AlsTap.Tap.parse(["--server", "http://flag:2"]).connection.url(environment: environment) == "http://flag:2")
        #expect(try AlsTap.Tap.parse([]).connection.url(environment: environment) == "http://env:1")
        #expect(try AlsTap.Tap.parse([]).connection.url(environment: ["ALSTAP_SERVER": ""]) == "http://127.0.0.1:9002")
    }

    @Test func tokenFromFileTrimmedElseEnvironment() throws {
        #expect(try AlsTap.Tap.parse([]).auth.token(environment: ["ALSTAP_TOKEN": "t0k"]) == "t0k")
        #expect(try AlsTap.Tap.parse([]).auth.token(environment: [:]) == nil)
        try withTempFile(" s3cret\r\n") { path throws in
            #expect(try AlsTap.Tap.parse(["--token-file", path]).auth.token(environment: ["ALSTAP_TOKEN": "t0k"]) == "s3cret")
        }
        try withTempFile(" \n") { path throws in
            let empty = #expect(throws: ValidationError.self) { try AlsTap.Tap.parse(["--token-file", path]).auth.token() }
            #expect(empty?.message == "--token-file \(path) is empty")
        }
        let missing = #expect(throws: ValidationError.self) { try AlsTap.Tap.parse(["--token-file", "/nonexistent"]).auth.token() }
        #expect(missing?.message == "cannot read --token-file /nonexistent")
    }

    @Test func tokenFileOverTheBoundIsRefused() throws {
        try withTempFile(String(repeating: "t", count: TokenFile.maxBytes + 1)) { path throws in
            let error = #expect(throws: ValidationError.self) { try TokenFile.read(path, flag: "--token-file") }
            #expect(error?.message == "--token-file \(path) is larger than 65536 bytes")
        }
        try withTempFile(String(repeating: "t", count: TokenFile.maxBytes)) { path throws in
            #expect(try TokenFile.read(path, flag: "--token-file").count == TokenFile.maxBytes)
        }
    }

    /// A token goes into an Authorization header: a line break inside would start a header of its own.
    @Test(arguments: ["two\nlines", "a\r\nX-Injected: 1", "nul\u{0}byte", "del\u{7F}"])
    func aTokenWithControlCharactersIsRefused(_ content: String) throws {
        try withTempFile(content + "\n") { path throws in
            let error = #expect(throws: ValidationError.self) { try TokenFile.read(path, flag: "--tap-token-file") }
            #expect(error?.message == "--tap-token-file \(path) holds control characters (one token on one line)")
        }
    }
}
