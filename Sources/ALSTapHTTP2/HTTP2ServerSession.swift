import CNghttp2

/// Settings this side announces.
public struct HTTP2ServerSettings: Sendable {
    public var maxConcurrentStreams: UInt32 = 1024
    /// Per-stream receive window (credit is returned by `consume` after the bytes are processed).
    public var initialWindowSize: UInt32 = 1 << 20
    /// Connection-level receive window.
    public var connectionWindowSize: Int32 = 8 << 20
    public var maxFrameSize: UInt32 = 1 << 16
    /// SETTINGS_MAX_HEADER_LIST_SIZE, announced and enforced: a request whose decoded header
    /// list (names + values + 32 per field, RFC 9113 §6.5.2) is larger is reset unanswered.
    /// HPACK lets a few bytes reference a large table entry many times over.
    public var maxHeaderListSize: UInt32 = 64 << 10

    public init() {}
}

/// An nghttp2 server session: bytes in (`receive`), bytes out (`send`), events to the delegate.
/// It does no I/O; the event loop moves the bytes.
public final class HTTP2ServerSession {
    let session: OpaquePointer
    unowned(unsafe) let delegate: any HTTP2ServerSessionDelegate
    /// Request heads being assembled, by stream id.
    var heads: [Int32: HTTP2RequestHead] = [:]
    /// Bytes of trailer blocks being received, by stream (counted against the same limit).
    var trailerSizes: [Int32: Int] = [:]
    let maxHeaderListSize: Int

    public init(delegate: any HTTP2ServerSessionDelegate, settings: HTTP2ServerSettings = .init()) throws(HTTP2Error) {
        self.delegate = delegate
        maxHeaderListSize = Int(settings.maxHeaderListSize)
        var callbacks: OpaquePointer?
        try check(nghttp2_session_callbacks_new(&callbacks), "nghttp2_session_callbacks_new")
        defer { nghttp2_session_callbacks_del(callbacks) }
        NGHTTP2Trampolines.install(on: callbacks!)

        var option: OpaquePointer?
        try check(nghttp2_option_new(&option), "nghttp2_option_new")
        defer { nghttp2_option_del(option) }
        // Flow-control credit goes back only after alstap has processed the bytes (`consume`).
        nghttp2_option_set_no_auto_window_update(option, 1)

        var created: OpaquePointer?
        // User data is set right below, once `self` is fully initialized.
        try check(nghttp2_session_server_new2(&created, callbacks, nil, option), "nghttp2_session_server_new2")
        session = created!
        // Unmanaged, unretained: nghttp2 calls back only from inside this object's own methods,
        // so `self` is alive whenever the pointer is used.
        nghttp2_session_set_user_data(session, Unmanaged.passUnretained(self).toOpaque())

        var entries = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
                                   value: settings.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
                                   value: settings.initialWindowSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue),
                                   value: settings.maxFrameSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                                   value: settings.maxHeaderListSize),
        ]
        try check(nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count),
                  "nghttp2_submit_settings")
        try check(nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0,
                                                        settings.connectionWindowSize),
                  "nghttp2_session_set_local_window_size")
    }

    deinit { nghttp2_session_del(session) }

    /// Feeds bytes read from the socket. Throws on a protocol error (the connection must close
    /// after flushing `send`, which then carries nghttp2's GOAWAY).
    public func receive(_ bytes: UnsafeRawBufferPointer) throws(HTTP2Error) {
        let result = nghttp2_session_mem_recv(session, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                              bytes.count)
        if result < 0 { throw HTTP2Error(code: Int32(result), call: "nghttp2_session_mem_recv", message: errorText(result)) }
    }

    /// Hands out bytes nghttp2 wants to send, one chunk at a time, until it has none or
    /// `body` returns false (the socket would block). The chunk is valid only during the call.
    /// Returns false if `body` stopped early.
    public func send(_ body: (UnsafeRawBufferPointer) -> Bool) throws(HTTP2Error) -> Bool {
        while true {
            var data: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &data)
            if count < 0 { throw HTTP2Error(code: Int32(count), call: "nghttp2_session_mem_send", message: errorText(count)) }
            if count == 0 { return true }
            if !body(UnsafeRawBufferPointer(start: data, count: count)) { return false }
        }
    }

    public var wantsRead: Bool { nghttp2_session_want_read(session) != 0 }
    public var wantsWrite: Bool { nghttp2_session_want_write(session) != 0 }

    /// Returns flow-control credit for `count` processed bytes of `stream`.
    public func consume(stream: Int32, count: Int) {
        guard count > 0 else { return }
        if nghttp2_session_consume(session, stream, count) != 0 {
            // The stream is already closed: only the connection window still counts these bytes.
            _ = nghttp2_session_consume_connection(session, count)
        }
    }

    /// Starts a response; `hasBody` attaches a body read through the delegate's `readBody`.
    public func respond(stream: Int32, headers: [HTTP2Header], hasBody: Bool) throws(HTTP2Error) {
        let rc = withHeaderVector(headers) { nva, count in
            if hasBody {
                var provider = nghttp2_data_provider()
                provider.read_callback = NGHTTP2Trampolines.readBody
                return nghttp2_submit_response(session, stream, nva, count, &provider)
            }
            return nghttp2_submit_response(session, stream, nva, count, nil)
        }
        try check(rc, "nghttp2_submit_response")
    }

    /// Tells nghttp2 that a deferred body has bytes again.
    public func resumeBody(stream: Int32) {
        _ = nghttp2_session_resume_data(session, stream)
    }

    public func resetStream(_ stream: Int32, errorCode: UInt32) {
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, errorCode)
    }

    /// The graceful shutdown notice (GOAWAY with the maximum stream id): no new streams please.
    public func announceShutdown() {
        _ = nghttp2_submit_shutdown_notice(session)
    }

    /// The final GOAWAY: streams above the last one processed are refused; the open ones go on
    /// (their frames are still read), and once they are closed the session wants neither to
    /// read nor to write. (Not `nghttp2_session_terminate_session`, which ignores all input from
    /// then on, so what a client sent on its open streams would be lost.)
    public func goAway() {
        _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue),
                                  nghttp2_session_get_last_proc_stream_id(session), NGHTTP2_NO_ERROR.rawValue, nil, 0)
    }

    /// After `receive` threw, the session may not be used again (nghttp2 says so of its fatal
    /// errors, and sends no GOAWAY for some, e.g. a CONTINUATION flood). These are the bytes of
    /// a GOAWAY frame with the error's code (RFC 9113 §5.4.1): write them, then close.
    public func fatalGoAwayFrame(for error: HTTP2Error) -> [UInt8] {
        let code: UInt32 = switch error.code {
        case NGHTTP2_ERR_FLOODED.rawValue, NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue:
            NGHTTP2_ENHANCE_YOUR_CALM.rawValue
        case NGHTTP2_ERR_NOMEM.rawValue, NGHTTP2_ERR_CALLBACK_FAILURE.rawValue:
            NGHTTP2_INTERNAL_ERROR.rawValue
        default:
            NGHTTP2_PROTOCOL_ERROR.rawValue
        }
        let lastStream = UInt32(max(0, nghttp2_session_get_last_proc_stream_id(session)))
        var frame: [UInt8] = [0, 0, 8, UInt8(NGHTTP2_GOAWAY.rawValue), 0, 0, 0, 0, 0]
        for value in [lastStream, code] {
            for shift in stride(from: 24, through: 0, by: -8) { frame.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
        }
        return frame
    }

    func submitTrailers(stream: Int32, _ trailers: [HTTP2Header]) {
        let rc = withHeaderVector(trailers) { nva, count in nghttp2_submit_trailer(session, stream, nva, count) }
        if rc != 0 { resetStream(stream, errorCode: NGHTTP2_INTERNAL_ERROR.rawValue) }
    }

    private func withHeaderVector(_ headers: [HTTP2Header],
                                  _ body: (UnsafePointer<nghttp2_nv>, Int) -> Int32) -> Int32 {
        // nghttp2 copies names and values during submit (no NO_COPY flags), so pointers into
        // this temporary buffer only need to live for the call.
        var bytes: [UInt8] = []
        for header in headers {
            bytes += header.name.utf8
            bytes += header.value.utf8
        }
        return bytes.withUnsafeMutableBufferPointer { buffer in
            var nva: [nghttp2_nv] = []
            nva.reserveCapacity(headers.count)
            var offset = 0
            for header in headers {
                let nameLength = header.name.utf8.count
                let valueLength = header.value.utf8.count
                nva.append(nghttp2_nv(name: buffer.baseAddress! + offset, value: buffer.baseAddress! + offset + nameLength,
                                      namelen: nameLength, valuelen: valueLength,
                                      flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
                offset += nameLength + valueLength
            }
            return nva.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }
}

@inline(__always)
func check(_ rc: Int32, _ call: String) throws(HTTP2Error) {
    if rc != 0 { throw HTTP2Error(code: rc, call: call, message: errorText(rc)) }
}

func errorText<T: BinaryInteger>(_ code: T) -> String {
    String(cString: nghttp2_strerror(Int32(truncatingIfNeeded: code)))
}
