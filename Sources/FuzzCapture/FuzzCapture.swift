// libFuzzer target: reading a capture file back (`alstap tap -r`), whose bytes come from anyone.
// The input goes in as a file of its own and, with the capture header in front, as records,
// through the whole playback engine (decode, filter, pairing, JSON), in pieces as a file is read.
import ALSTapALS
import ALSTapCapture
import ALSTapFilter
import ALSTapFormats
import ALSTapHTTP1
import FuzzReplay

func fuzzCapture(_ data: UnsafeRawBufferPointer) {
    let queries = ["pair=1", "ns=demo&!code=5xx", "fields=request.path,response.code&format=json", "format=text"]
    let query = (try? TapQuery(RequestTarget("/tap?" + queries[Int(data.first ?? 0) % queries.count]).query)) ?? TapQuery()
    for input in [Array(data), Array(CaptureFile.header.bytes) + Array(data)] {
        var written = 0
        let playback = CapturePlayback(query: query, since: .timeOfDay(0), output: { written += $0.count })
        input.withUnsafeBytes { bytes in
            var offset = 0
            var piece = 0
            // Pieces of 1, 7 and 4096 bytes in turn: records split anywhere.
            while offset < bytes.count {
                let end = min(bytes.count, offset + [1, 7, 4096][piece % 3])
                piece += 1
                do {
                    try playback.feed(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                } catch {
                    return
                }
                offset = end
            }
        }
        _ = playback.finish()
        _ = written
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzCapture(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("FuzzCapture_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzerTestOneInput)
}
#else
@main
enum Replay {
    static func main() { replayFiles(CommandLine.arguments.dropFirst(), fuzzCapture) }
}
#endif
