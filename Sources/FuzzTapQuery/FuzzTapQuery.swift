// libFuzzer target: the tap and top query parsers, matching the parsed filter against the
// facts of a real decoded entry, a /top aggregate of that entry with the parsed grouping, and
// field masks: an input whose first line parses as a `fields=` mask has the rest projected.
import FuzzReplay
import ALSTapAggregate
import ALSTapALS
import ALSTapFilter
import ALSTapFormats
import ALSTapHTTP1

func fuzzTapQuery(_ data: UnsafeRawBufferPointer) {
    fuzzFieldMask(data)
    let text = String(decoding: data, as: UTF8.self)
    if let top = try? TopQuery(RequestTarget("/top?" + text).query) {
        let window = TopWindow(grouping: top.by, windowSeconds: top.windowSeconds, maxGroups: 2, budget: TopBudget(limit: 1 << 20),
                               now: 0)
        window.add(record: 0, of: Sample.facts, now: 1)
        let snapshot = window.snapshot(now: top.intervalMillis * 1_000_000, wallMicros: 0, limit: top.limit)
        for format in [OutputFormat.json, .text, .sse] { _ = snapshot.encoded(as: format) }
    }
    guard let query = try? TapQuery(RequestTarget("/tap?" + text).query), let filter = query.filter else { return }
    _ = filter.matches(Sample.facts.facts[0], in: Sample.facts)
}

/// `MASK\nLINE`: the line projected onto the mask, if the mask parses; a projection is a line
/// that projects as itself.
func fuzzFieldMask(_ data: UnsafeRawBufferPointer) {
    guard let newline = data.firstIndex(of: UInt8(ascii: "\n")),
          let mask = try? FieldMask(parsing: String(decoding: data[..<newline], as: UTF8.self)) else { return }
    let out = ByteWriter(capacity: 4096), again = ByteWriter(capacity: 4096)
    mask.project(UnsafeRawBufferPointer(rebasing: data[(newline + 1)...]), into: out)
    mask.project(out.bytes, into: again)
    precondition(out.bytes.last == UInt8(ascii: "\n") && again.bytes.elementsEqual(out.bytes))
}

/// One decoded entry's facts to match filters against.
enum Sample {
    static let facts: EntryFactsTable = {
        // StreamAccessLogsMessage { http_logs { log_entry { common_properties { upstream_cluster:
        // "outbound|80||a.b.svc.cluster.local" } request { path: "/x" } response { response_code { value: 503 } } } } }
        let cluster = Array("outbound|80||a.b.svc.cluster.local".utf8)
        let common: [UInt8] = [0x7A, UInt8(cluster.count)] + cluster
        let request: [UInt8] = [0x2A, 2] + Array("/x".utf8)
        let response: [UInt8] = [0x0A, 3, 0x08, 0xF7, 0x03]
        let entry: [UInt8] = [0x0A, UInt8(common.count)] + common + [0x1A, UInt8(request.count)] + request
            + [0x22, UInt8(response.count)] + response
        let logs: [UInt8] = [0x0A, UInt8(entry.count)] + entry
        let message: [UInt8] = [0x12, UInt8(logs.count)] + logs
        var reporter = Reporter()
        let batch = message.withUnsafeBytes {
            try! ALSDecoder().decode($0, reporter: &reporter, formats: [], facts: FactsNeed.pairing.union([.measures, .details]),
                                    decodedAtNanos: 0)
        }
        return batch.facts!
    }()
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzTapQuery(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("FuzzTapQuery_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzerTestOneInput)
}
#else
@main
enum Replay {
    static func main() { replayFiles(CommandLine.arguments.dropFirst(), fuzzTapQuery) }
}
#endif
