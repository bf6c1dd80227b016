// libFuzzer target: the HTTP/1.1 request-head parser and request-target parsing.
import FuzzReplay
import ALSTapHTTP1

func fuzzHTTP1(_ data: UnsafeRawBufferPointer) {
    switch HTTP1RequestParser.parse(data, maxHeadBytes: 16 * 1024) {
    case .complete(let head, let consumed):
        precondition(consumed <= data.count)
        _ = RequestTarget(head.target)
        _ = head.keepAlive
    case .incomplete, .tooLarge, .malformed:
        break
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzHTTP1(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("FuzzHTTP1_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzerTestOneInput)
}
#else
@main
enum Replay {
    static func main() { replayFiles(CommandLine.arguments.dropFirst(), fuzzHTTP1) }
}
#endif
