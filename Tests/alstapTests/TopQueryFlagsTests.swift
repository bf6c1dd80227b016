import ALSTapFilter
import ArgumentParser
import Testing

@testable import alstap

@Suite struct TopQueryFlagsTests {
    func query(_ arguments: [String]) throws -> String {
        let top = try AlsTap.Top.parse(arguments)
        return top.query(by: top.by)
    }

    /// The message `alstap top ARGUMENTS` exits with (nil: the arguments are fine).
    func error(_ arguments: [String]) -> String? {
        do {
            _ = try AlsTap.Top.parse(arguments)
            return nil
        } catch {
            return AlsTap.Top.message(for: error)
        }
    }

    @Test func defaultsAreAllSent() throws {
        #expect(try query([]) == "format=json&by=edge&window=10s&interval=1s")
        #expect(try query(["--by", "route", "--window", "1m", "--interval", "500ms", "--once"])
            == "format=json&by=route&window=1m&interval=500ms&follow=0")
    }

    /// `top` sends the filters exactly as `tap` does (one group of flags, one translation).
    @Test func filtersAreTapsFilters() throws {
        let filters = ["workload/rev-v1", "--ns", "my ns", "--destination", "pod/a+b", "--destination-ns", "d",
                       "--method", "GET", "--method", "POST", "--path", "/a b?c&d", "--authority", "h:1",
                       "--scheme", "https", "--direction", "in", "--response-code", "500,599", "--flags", "UH,UF",
                       "--min-duration", "250ms"]
        let tap = try AlsTap.Tap.parse(filters).query
        #expect(try query(filters) == tap + "&by=edge&window=10s&interval=1s")
        #expect(tap.hasPrefix("format=json&workload=my%20ns/rev-v1&destination=pod/a%2Bb&"))
    }

    /// The `b` key asks for another grouping with everything else unchanged.
    @Test func anotherGroupingChangesOnlyBy() throws {
        let top = try AlsTap.Top.parse(["ns/demo", "--window", "30s"])
        #expect(top.query(by: .reporter) == "format=json&ns=demo&by=reporter&window=30s&interval=1s")
    }

    @Test func badValuesNameTheFlag() {
        #expect(error(["svc/x"]) == "resource must be ns/NAME, workload/NAME or pod/NAME, not \"svc/x\"")
        #expect(error(["--direction", "up"]) == "--direction must be in or out")
        #expect(error(["--server", "https://x:1"]) == "--server must look like http://HOST:PORT, not \"https://x:1\"")
        #expect(error(["--by", "pod"])?.contains("'edge', 'route', 'destination', 'source' or 'reporter'") == true)
        #expect(error(["--sort", "name"])?.contains("The value 'name' is invalid for '--sort <sort>'") == true)
        #expect(error(["-o", "wide"])?.contains("Please provide one of 'table' and 'json'") == true)
        #expect(error(["--last=5"])?.contains("Unknown option '--last'") == true, "--last is tap's")
    }

    @Test func serverAndTokenAreTapsOptions() throws {
        let top = try AlsTap.Top.parse(["--server", "http://flag:2"])
        #expect(top.connection.url(environment: ["ALSTAP_SERVER": "http://env:1"]) == "http://flag:2")
        let defaults = try AlsTap.Top.parse([])
        #expect(defaults.connection.url(environment: ["ALSTAP_SERVER": "http://env:1"]) == "http://env:1")
        #expect(try defaults.auth.token(environment: ["ALSTAP_TOKEN": "t0k"]) == "t0k")
        let missing = #expect(throws: ValidationError.self) {
            try AlsTap.Top.parse(["--token-file", "/nonexistent"]).auth.token()
        }
        #expect(missing?.message == "cannot read --token-file /nonexistent")
    }
}
