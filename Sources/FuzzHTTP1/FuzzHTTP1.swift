// libFuzzer target: the HTTP/1.1 request-head parser and its body framing, request-target parsing, and the
// response reader a cluster tap uses on its peers (fed the same bytes in two pieces).
import FuzzReplay
import ALSTapHTTP1

func fuzzHTTP1(_ data: UnsafeRawBufferPointer) {
    switch HTTP1RequestParser.parse(data, maxHeadBytes: 16 * 1024) {
    case .complete(let head, let consumed):
        precondition(consumed <= data.count)
        _ = RequestTarget(head.target)
        _ = head.keepAlive
        if case .contentLength(let length) = HTTP1RequestParser.bodyFraming(of: head) { precondition(length > 0) }
    case .incomplete, .tooLarge, .malformed:
        break
    }
    var reader = HTTP1ResponseReader(maxHeadBytes: 1024)
    var bodyBytes = 0
    let half = data.count / 2
    for piece in [UnsafeRawBufferPointer(rebasing: data[..<half]), UnsafeRawBufferPointer(rebasing: data[half...])] {
        do {
            try reader.feed(piece) { event in
                if case .body(let body) = event { bodyBytes += body.count }
            }
        } catch {
            break
        }
    }
    precondition(bodyBytes <= data.count)
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
