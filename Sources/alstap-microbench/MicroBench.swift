// Micro-benchmark: ns per entry for protobuf-c decode alone and for decode + JSON / text encode,
// on a gRPC request body made by scripts/bench (realistic Istio entries). Run by scripts/bench.
//   alstap-microbench BODY_FILE [SECONDS_PER_CASE]
import ALSTapALS
import ALSTapSystem
import Foundation

@main
enum MicroBench {
    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2 else {
            print("usage: alstap-microbench BODY_FILE [SECONDS_PER_CASE]")
            exit(2)
        }
        let seconds = arguments.count > 2 ? Double(arguments[2]) ?? 2 : 2
        let body = [UInt8](try Data(contentsOf: URL(fileURLWithPath: arguments[1])))
        let messages = split(body)
        print("messages: \(messages.count), bytes/message: \(body.count / max(1, messages.count))")
        for (name, formats) in [("decode only", FormatSet()), ("decode + json", .json), ("decode + text", .text),
                                ("decode + json + text", [.json, .text] as FormatSet)] {
            run(name, formats: formats, messages: messages, seconds: seconds)
        }
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

    static func run(_ name: String, formats: FormatSet, messages: [[UInt8]], seconds: Double) {
        let decoder = ALSDecoder()
        var reporter = Reporter()
        var entries = 0
        var outputBytes = 0
        let start = monotonicNanos()
        let deadline = start + UInt64(seconds * 1e9)
        while monotonicNanos() < deadline {
            for message in messages {
                message.withUnsafeBytes { bytes in
                    let batch = try! decoder.decode(bytes, reporter: &reporter, formats: formats, decodedAtNanos: 0)
                    entries += batch.entryCount
                    outputBytes += (batch.json?.bytes.count ?? 0) + (batch.text?.bytes.count ?? 0)
                }
            }
        }
        let perEntry = Double(monotonicNanos() - start) / Double(entries)
        print(String(format: "%-22@ %8.1f ns/entry %10.0f entries/s %6.0f output bytes/entry", name as NSString,
                     perEntry, 1e9 / perEntry, Double(outputBytes) / Double(entries)))
    }
}
