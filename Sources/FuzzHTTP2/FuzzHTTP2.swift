// libFuzzer target: the nghttp2 server session fed arbitrary bytes after the client preface,
// with a delegate that answers like alstap (bodies, trailers, resets), output drained each time.
import FuzzReplay
import ALSTapHTTP2

final class Answering: HTTP2ServerSessionDelegate {
    var session: HTTP2ServerSession!

    func requestStarted(stream: Int32, head: HTTP2RequestHead, endStream: Bool) {
        try? session.respond(stream: stream, headers: [HTTP2Header(":status", "200")], hasBody: stream % 3 != 0)
        if stream % 5 == 0 { session.resetStream(stream, errorCode: 0) }
    }

    func requestData(stream: Int32, _ chunk: UnsafeRawBufferPointer) {
        session.consume(stream: stream, count: chunk.count)
    }

    func requestEnded(stream: Int32) {}

    func readBody(stream: Int32, into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyRead {
        stream % 2 == 0 ? .deferred : .bytes(count: min(buffer.count, 7), end: true)
    }

    func trailers(stream: Int32) -> [HTTP2Header] { [HTTP2Header("grpc-status", "0")] }

    func streamClosed(stream: Int32, errorCode: UInt32) {}
}

private let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

func fuzzHTTP2(_ data: UnsafeRawBufferPointer) {
    let delegate = Answering()
    guard let session = try? HTTP2ServerSession(delegate: delegate) else { return }
    delegate.session = session
    _ = preface.withUnsafeBytes { try? session.receive($0) }
    // Feed in pieces, draining output in between, as the event loop does.
    var offset = 0
    while offset < data.count {
        let length = min(data.count - offset, 1 + Int(data[offset]) * 4)
        do {
            try session.receive(UnsafeRawBufferPointer(rebasing: data[offset..<(offset + length)]))
        } catch {
            break
        }
        _ = try? session.send { _ in true }
        offset += length
    }
    _ = try? session.send { _ in true }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzHTTP2(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("FuzzHTTP2_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzerTestOneInput)
}
#else
@main
enum Replay {
    static func main() { replayFiles(CommandLine.arguments.dropFirst(), fuzzHTTP2) }
}
#endif
