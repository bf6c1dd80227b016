// Micro-benchmark: ns per entry for protobuf-c decode alone and for decode + JSON / text encode,
// on a gRPC request body made by scripts/bench (realistic Istio entries). Run by scripts/bench.
//   alstap-microbench BODY_FILE [SECONDS_PER_CASE [OTLP_BODY_FILE [OTLP_EVERY_ATTRIBUTE_BODY_FILE]]]
//   alstap-microbench BODY_FILE --passes N CASE    (fixed work, for callgrind: CASE is decode,
//                                                   json, text, json+text, json+facts, facts, top,
//                                                   json+mask, or otlp+json with BODY_FILE an OTLP body)
// `top` is what a `/top?by=route` aggregate adds: the measures, and counting into a TopWindow.
// `json+mask` projects every JSON line through a two-field mask (`fields=request.path,response.code`).
// `otlp+json` takes the same entries as OTLP records (ExportLogsServiceRequests): translation into
// ALS messages, then decode + JSON as `json`.
import ALSTapAggregate
import ALSTapALS
import ALSTapFilter
import ALSTapOTLP
import ALSTapSystem
import Foundation

@main
enum MicroBench {
    /// Name, formats, the facts computed (filter facts as when any subscriber filters), and
    /// whether a `/top?by=route` window counts every entry.
    static let cases: [(String, FormatSet, FactsNeed, Bool)] = [
        ("decode", [], .none, false), ("json", .json, .none, false), ("text", .text, .none, false),
        ("json+text", [.json, .text], .none, false), ("json+facts", .json, .filters, false),
        ("facts", [], .filters, false), ("top", [], .aggregates, true),
        ("json+mask", [.json, .memberIndex], .none, false),
    ]

    /// The mask `json+mask` projects through.
    static let mask = try! FieldMask(parsing: "request.path,response.code")

    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2 else {
            print("usage: alstap-microbench BODY_FILE [SECONDS_PER_CASE] | BODY_FILE --passes N CASE")
            exit(2)
        }
        let body = [UInt8](try Data(contentsOf: URL(fileURLWithPath: arguments[1])))
        let messages = split(body)
        if arguments.count == 5, arguments[2] == "--passes", let passes = Int(arguments[3]), arguments[4] == "otlp+json" {
            let (entries, _) = translateAll(messages, passes: passes, until: nil)
            print("\(entries) entries decoded")
            return
        }
        if arguments.count == 5, arguments[2] == "--passes", let passes = Int(arguments[3]),
           let selected = cases.first(where: { $0.0 == arguments[4] }) {
            let (entries, _) = decodeAll(messages, formats: selected.1, facts: selected.2, top: selected.3,
                                         masked: selected.0 == "json+mask", passes: passes, until: nil)
            print("\(entries) entries decoded")
            return
        }
        let seconds = arguments.count > 2 ? Double(arguments[2]) ?? 2 : 2
        print("messages: \(messages.count), bytes/message: \(body.count / max(1, messages.count))")
        for (name, formats, facts, top) in cases {
            let start = monotonicNanos()
            let (entries, outputBytes) = decodeAll(messages, formats: formats, facts: facts, top: top,
                                                   masked: name == "json+mask", passes: .max,
                                                   until: start + UInt64(seconds * 1e9))
            let perEntry = Double(monotonicNanos() - start) / Double(entries)
            print(String(format: "%-10@ %8.1f ns/entry %10.0f entries/s %6.0f output bytes/entry", name as NSString,
                         perEntry, 1e9 / perEntry, Double(outputBytes) / Double(entries)))
        }
        // OTLP bodies: the recommended attribute set, then every attribute alstap reads.
        for (name, path) in zip(["otlp+json", "otlp-all+json"], arguments.dropFirst(3)) {
            let otlp = split([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
            let start = monotonicNanos()
            let (entries, outputBytes) = translateAll(otlp, passes: .max, until: start + UInt64(seconds * 1e9))
            let perEntry = Double(monotonicNanos() - start) / Double(entries)
            print(String(format: "%-10@ %8.1f ns/entry %10.0f entries/s %6.0f output bytes/entry", name as NSString,
                         perEntry, 1e9 / perEntry, Double(outputBytes) / Double(entries)))
        }
    }

    /// Translates every OTLP request into ALS messages and decodes those with JSON, as the server does.
    static func translateAll(_ requests: [[UInt8]], passes: Int, until deadline: UInt64?) -> (entries: Int, outputBytes: Int) {
        let translator = OTLPTranslator()
        let decoder = ALSDecoder()
        var known: (key: [UInt8], reporter: Reporter)?
        var entries = 0
        var outputBytes = 0
        var pass = 0
        while pass < passes, deadline.map({ monotonicNanos() < $0 }) ?? true {
            for request in requests {
                request.withUnsafeBytes { bytes in
                    _ = try! translator.translate(bytes) { message throws(GRPCStatusError) in
                        // As the server does: a reporter seen before is looked up, not parsed again.
                        let key = Array(message.identifier)
                        var reporter = known?.key == key ? known!.reporter : Reporter()
                        if known?.key != key { try translator.attachIdentifier(message) }
                        let batch = try decoder.encode(built: message.message, reporter: &reporter, formats: .json,
                                                       decodedAtNanos: 0)
                        known = (key, reporter)
                        entries += batch.entryCount
                        outputBytes += batch.json?.bytes.count ?? 0
                    }
                }
            }
            pass += 1
        }
        return (entries, outputBytes)
    }

    /// The gRPC messages of a request body.
    static func split(_ body: [UInt8]) -> [[UInt8]] {
        var messages: [[UInt8]] = []
        var offset = 0
        while offset + 5 <= body.count {
            let length = body[(offset + 1)..<(offset + 5)].reduce(0) { $0 << 8 | Int($1) }
            messages.append(Array(body[(offset + 5)..<(offset + 5 + length)]))
            offset += 5 + length
        }
        return messages
    }

    /// Decodes every message `passes` times (or until the deadline); returns entries and output bytes.
    static func decodeAll(_ messages: [[UInt8]], formats: FormatSet, facts: FactsNeed, top: Bool, masked: Bool = false,
                          passes: Int, until deadline: UInt64?) -> (entries: Int, outputBytes: Int) {
        let decoder = ALSDecoder()
        let projected = ByteWriter()
        let window = top ? TopWindow(grouping: .route, windowSeconds: 10, maxGroups: 10_000,
                                     budget: TopBudget(limit: 1 << 30), now: 0) : nil
        var reporter = Reporter()
        var entries = 0
        var outputBytes = 0
        var pass = 0
        while pass < passes, deadline.map({ monotonicNanos() < $0 }) ?? true {
            for message in messages {
                message.withUnsafeBytes { bytes in
                    let batch = try! decoder.decode(bytes, reporter: &reporter, formats: formats, facts: facts,
                                                       decodedAtNanos: 0)
                    if let window, let table = batch.facts {
                        // 200 000 entries a second of simulated time: the window slides as it would.
                        for i in 0..<batch.entryCount { window.add(record: i, of: table, now: UInt64(entries + i) * 5_000) }
                    }
                    entries += batch.entryCount
                    if masked, let json = batch.json {
                        // As the server's MaskedLines: line by line into one buffer.
                        projected.removeAll()
                        var start = 0
                        for (line, end) in json.lineEnds.enumerated() {
                            mask.project(UnsafeRawBufferPointer(rebasing: json.bytes.bytes[start..<Int(end)]),
                                         members: json.members?.members(ofLine: line), lineOffset: start, into: projected)
                            start = Int(end)
                        }
                        outputBytes += projected.count
                    } else {
                        outputBytes += (batch.json?.bytes.count ?? 0) + (batch.text?.bytes.count ?? 0)
                    }
                }
            }
            pass += 1
        }
        return (entries, outputBytes)
    }
}
