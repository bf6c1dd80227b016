// libFuzzer target: the notice parser, which reads a replica's notice frames (peer bytes), and
// its round trip (a notice it reads is written and read back as the same notice).
import FuzzReplay
import ALSTapALS
import ALSTapFormats

func fuzzNotice(_ data: UnsafeRawBufferPointer) {
    guard let notice = Notice(json: String(decoding: data, as: UTF8.self)) else { return }
    precondition(Notice(json: notice.json) == notice, "a notice does not read back: \(notice)")
    for format in [OutputFormat.json, .text, .sse, .als] { _ = notice.encoded(as: format) }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzNotice(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("FuzzNotice_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzerTestOneInput)
}
#else
@main
enum Replay {
    static func main() { replayFiles(CommandLine.arguments.dropFirst(), fuzzNotice) }
}
#endif
