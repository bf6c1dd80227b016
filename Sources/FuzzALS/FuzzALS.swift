// libFuzzer target: gRPC deframing + ALS decoding + JSON and text encoding on arbitrary bytes.
// Every line produced must be valid UTF-8 ending in one newline. Built by scripts/fuzz; without
// -DFUZZING it is a replayer: `FuzzALS FILE...` runs each input once.
import FuzzReplay
import ALSTapALS

// nonisolated(unsafe): libFuzzer calls the target from one thread only.
nonisolated(unsafe) private let decoder = ALSDecoder(redactedHeaders: ["authorization"])

func fuzzALS(_ data: UnsafeRawBufferPointer) {
    var deframer = GRPCDeframer(maxMessageBytes: 1 << 20)
    var reporter = Reporter()
    // The first byte splits the input into two chunks, so split messages are exercised too.
    let split = data.isEmpty ? 0 : min(Int(data[0]), data.count)
    for chunk in [UnsafeRawBufferPointer(rebasing: data[..<split]), UnsafeRawBufferPointer(rebasing: data[split...])] {
        do {
            try deframer.feed(chunk) { payload throws(GRPCStatusError) in
                let batch = try decoder.decode(payload, reporter: &reporter, formats: [.json, .text], facts: .pairing,
                                               decodedAtNanos: 0)
                for lines in [batch.json, batch.text].compactMap({ $0 }) {
                    let bytes = lines.bytes.bytes
                    precondition(lines.lineEnds.count == batch.entryCount)
                    precondition(bytes.isEmpty || bytes.last == 0x0A)
                    precondition(String(validating: bytes, as: UTF8.self) != nil, "output is not UTF-8")
                }
            }
        } catch {
            return
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzALS(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("FuzzALS_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzerTestOneInput)
}
#else
@main
enum Replay {
    static func main() { replayFiles(CommandLine.arguments.dropFirst(), fuzzALS) }
}
#endif
