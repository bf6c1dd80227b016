// libFuzzer target: OTLP logs, as gRPC would hand them over (the bytes are an
// ExportLogsServiceRequest) or as OTLP/HTTP would (the bytes are a chunked body first), through
// the translation into ALS messages and alstap's ALS decoder and JSON encoder. Every message the
// translator emits must decode with the count it said, and every line must be valid UTF-8 ending
// in one newline. Built by scripts/fuzz; without -DFUZZING it is a replayer of saved inputs.
import ALSTapALS
import ALSTapHTTP1
import ALSTapOTLP
import FuzzReplay

// nonisolated(unsafe): libFuzzer calls the target from one thread only.
nonisolated(unsafe) private let translator = OTLPTranslator()
nonisolated(unsafe) private let decoder = ALSDecoder()
nonisolated(unsafe) private let replayDecoder = ALSDecoder()
nonisolated(unsafe) private let packed = ByteWriter(capacity: 64 * 1024)

func fuzzOTLP(_ data: UnsafeRawBufferPointer) {
    // The first byte picks the transport: odd reads the rest as a chunked HTTP body first.
    guard let mode = data.first else { return }
    let rest = UnsafeRawBufferPointer(rebasing: data[1...])
    if mode & 1 == 1 {
        var reader = RequestBodyReader(.chunked, limit: 1 << 20)
        guard case (_, .complete) = reader.consume(rest) else { return }
        reader.body.withUnsafeBytes { translate($0) }
    } else {
        translate(rest)
    }
}

private func translate(_ request: UnsafeRawBufferPointer) {
    do {
        let rejections = try translator.translate(request) { message throws(GRPCStatusError) in
            var reporter = Reporter()
            try translator.attachIdentifier(message)
            let batch = try decoder.encode(built: message.message, reporter: &reporter, formats: [.json, .text, .als],
                                           facts: .pairing, decodedAtNanos: 0)
            // What the replay ring keeps: the built message packed as ALS, which must decode the same.
            packed.removeAll()
            ProtobufWire.appendPacked(message.message, to: packed)
            var replayed = reporter
            guard let again = try? replayDecoder.decode(packed.bytes, reporter: &replayed, formats: [.json], decodedAtNanos: 0)
            else { preconditionFailure("the packed message does not decode") }
            precondition(again.entryCount == batch.entryCount, "the packed message decodes differently")
            precondition(again.json.map { Array($0.bytes.bytes) } == batch.json.map { Array($0.bytes.bytes) },
                         "the packed message's lines differ")
            precondition(batch.entryCount == message.entryCount, "the translator's message decodes differently")
            for lines in [batch.json, batch.text].compactMap({ $0 }) {
                let bytes = lines.bytes.bytes
                precondition(lines.lineEnds.count == batch.entryCount)
                precondition(bytes.isEmpty || bytes.last == 0x0A)
                precondition(String(validating: bytes, as: UTF8.self) != nil, "output is not UTF-8")
            }
        }
        precondition(rejections.count == 0 || !rejections.errorMessage.isEmpty)
    } catch {
        return
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOTLP(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("FuzzOTLP_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzerTestOneInput)
}
#else
@main
enum Replay {
    static func main() { replayFiles(CommandLine.arguments.dropFirst(), fuzzOTLP) }
}
#endif
