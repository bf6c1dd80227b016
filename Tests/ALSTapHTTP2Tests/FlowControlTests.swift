import CNghttp2
import Testing

@testable import ALSTapHTTP2

/// The server session records what arrives and returns flow-control credit only when told to.
final class RecordingDelegate: HTTP2ServerSessionDelegate {
    var session: HTTP2ServerSession!
    var received = 0
    var unconsumed = 0
    var consumeAsReceived = false
    var heads: [HTTP2RequestHead] = []
    var ended = false
    var closed: [Int32: UInt32] = [:]
    var responseSent = false

    func requestStarted(stream: Int32, head: HTTP2RequestHead, endStream: Bool) { heads.append(head) }

    func requestData(stream: Int32, _ chunk: UnsafeRawBufferPointer) {
        received += chunk.count
        unconsumed += chunk.count
        if consumeAsReceived { consumeAll(stream: stream) }
    }

    func consumeAll(stream: Int32) {
        session.consume(stream: stream, count: unconsumed)
        unconsumed = 0
    }

    func requestEnded(stream: Int32) {
        ended = true
        try! session.respond(stream: stream, headers: [HTTP2Header(":status", "200"),
                                                       HTTP2Header("content-type", "application/grpc")], hasBody: true)
    }

    func readBody(stream: Int32, into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyRead {
        buffer.copyBytes(from: [0, 0, 0, 0, 0])
        return .bytes(count: 5, end: true)
    }

    func trailers(stream: Int32) -> [HTTP2Header] { [HTTP2Header("grpc-status", "0")] }

    func streamClosed(stream: Int32, errorCode: UInt32) { closed[stream] = errorCode }
}

/// A real nghttp2 client session sending one large request body.
final class Client {
    var session: OpaquePointer!
    let body: [UInt8]
    var bodyOffset = 0
    var responseHeaders: [String: String] = [:]
    var responseBytes = 0
    var closed = false

    init(bodySize: Int) {
        body = (0..<bodySize).map { UInt8(truncatingIfNeeded: $0) }
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, _, name, nameLength, value, valueLength, _, user in
            let client = Unmanaged<Client>.fromOpaque(user!).takeUnretainedValue()
            client.responseHeaders[String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self)]
                = String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self)
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, _, _, length, user in
            Unmanaged<Client>.fromOpaque(user!).takeUnretainedValue().responseBytes += length
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, _, _, user in
            Unmanaged<Client>.fromOpaque(user!).takeUnretainedValue().closed = true
            return 0
        }
        var created: OpaquePointer?
        nghttp2_session_client_new(&created, callbacks, Unmanaged.passUnretained(self).toOpaque())
        nghttp2_session_callbacks_del(callbacks)
        session = created
        nghttp2_submit_settings(session, 0, nil, 0)
    }

    deinit { nghttp2_session_del(session) }

    func submitRequest(path: String) -> Int32 {
        let headers = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "test"),
                       ("content-type", "application/grpc")]
        // Copies that outlive the submit call (nghttp2 copies them again; freed below).
        let copies = headers.map { (name, value) in
            (UnsafeMutablePointer<UInt8>.allocate(capacity: name.utf8.count), name.utf8.count,
             UnsafeMutablePointer<UInt8>.allocate(capacity: value.utf8.count), value.utf8.count, name, value)
        }
        defer { copies.forEach { $0.0.deallocate(); $0.2.deallocate() } }
        let nva = copies.map { copy in
            _ = UnsafeMutableBufferPointer(start: copy.0, count: copy.1).initialize(from: copy.4.utf8)
            _ = UnsafeMutableBufferPointer(start: copy.2, count: copy.3).initialize(from: copy.5.utf8)
            return nghttp2_nv(name: copy.0, value: copy.2, namelen: copy.1, valuelen: copy.3, flags: 0)
        }
        var provider = nghttp2_data_provider()
        provider.read_callback = { _, _, buffer, length, flags, _, user in
            let client = Unmanaged<Client>.fromOpaque(user!).takeUnretainedValue()
            let count = min(length, client.body.count - client.bodyOffset)
            client.body.withUnsafeBytes {
                UnsafeMutableRawPointer(buffer!).copyMemory(from: $0.baseAddress! + client.bodyOffset, byteCount: count)
            }
            client.bodyOffset += count
            if client.bodyOffset == client.body.count { flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
            return count
        }
        return nghttp2_submit_request(session, nil, nva, nva.count, &provider, nil)
    }
}

@Suite struct FlowControlTests {
    /// Moves bytes both ways until neither side has anything to send.
    func pump(_ client: Client, _ server: HTTP2ServerSession) throws {
        for _ in 0..<10_000 {
            var moved = false
            while true {
                var data: UnsafePointer<UInt8>?
                let count = nghttp2_session_mem_send(client.session, &data)
                #expect(count >= 0)
                if count <= 0 { break }
                try server.receive(UnsafeRawBufferPointer(start: data, count: count))
                moved = true
            }
            _ = try server.send { chunk in
                let rc = nghttp2_session_mem_recv(client.session, chunk.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                  chunk.count)
                #expect(rc == chunk.count)
                moved = true
                return true
            }
            if !moved { return }
        }
        Issue.record("pump did not settle")
    }

    @Test func bodyFarOverTheWindowArrivesOnlyAsCreditIsReturned() throws {
        let window: UInt32 = 65_535
        let bodySize = 3 << 20
        let delegate = RecordingDelegate()
        var settings = HTTP2ServerSettings()
        settings.initialWindowSize = window
        settings.connectionWindowSize = Int32(window)
        let server = try HTTP2ServerSession(delegate: delegate, settings: settings)
        delegate.session = server
        let client = Client(bodySize: bodySize)
        let stream = client.submitRequest(path: "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs")
        #expect(stream == 1)

        try pump(client, server)
        // Without credit the client must stop at the window.
        #expect(delegate.received > 0)
        #expect(delegate.received <= Int(window))
        #expect(!delegate.ended)
        #expect(delegate.heads.first?.path == "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs")
        #expect(delegate.heads.first?.contentType == "application/grpc")

        // With credit returned after each chunk, the rest flows.
        delegate.consumeAll(stream: stream)
        delegate.consumeAsReceived = true
        try pump(client, server)
        #expect(delegate.received == bodySize)
        #expect(delegate.ended)
        #expect(client.closed)
        #expect(client.responseHeaders[":status"] == "200")
        #expect(client.responseHeaders["grpc-status"] == "0")
        #expect(client.responseBytes == 5)
        #expect(delegate.closed[stream] == 0)
    }

    @Test func garbageIsAProtocolError() throws {
        let delegate = RecordingDelegate()
        let server = try HTTP2ServerSession(delegate: delegate)
        delegate.session = server
        let garbage = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(throws: HTTP2Error.self) { try garbage.withUnsafeBytes { try server.receive($0) } }
    }
}
