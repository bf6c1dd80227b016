import CNghttp2

/// The C callbacks nghttp2 calls, each forwarding to the `HTTP2ServerSession` in user_data.
/// This file is the only place that turns nghttp2's raw pointers into Swift values.
enum NGHTTP2Trampolines {
    static func install(on callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameReceived)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)
    }

    /// user_data is the session, unretained (see `HTTP2ServerSession.init`).
    @inline(__always)
    static func session(_ userData: UnsafeMutableRawPointer?) -> HTTP2ServerSession {
        Unmanaged<HTTP2ServerSession>.fromOpaque(userData!).takeUnretainedValue()
    }

    static let onBeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, userData in
        guard let frame else { return 0 }
        let owner = session(userData)
        let stream = CNghttp2_frame_stream_id(frame)
        guard CNghttp2_frame_headers_category(frame) == Int32(NGHTTP2_HCAT_REQUEST.rawValue) else {
            owner.trailerSizes[stream] = 0  // trailers: only counted, against the same limit
            return 0
        }
        // Refused: reset with REFUSED_STREAM (safe to retry elsewhere); the failure tells nghttp2
        // to skip the rest of the block (still decoded for HPACK's sake, but not validated).
        guard owner.delegate.streamOpening(stream: stream) else {
            owner.resetStream(stream, errorCode: NGHTTP2_REFUSED_STREAM.rawValue)
            return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        owner.heads[stream] = HTTP2RequestHead()
        return 0
    }

    /// Keeps the four headers alstap routes on, compared as bytes (no String per header), and
    /// counts the list's size: over the limit, the stream is reset and nothing more is kept.
    static let onHeader: nghttp2_on_header_callback = { _, frame, name, nameLength, value, valueLength, _, userData in
        guard let frame, let name, let value else { return 0 }
        let owner = session(userData)
        let stream = CNghttp2_frame_stream_id(frame)
        guard var head = owner.heads[stream] else {
            // Trailers: alstap keeps none, but their size counts (a bomb may hide there too).
            guard let size = owner.trailerSizes[stream] else { return 0 }
            let grown = size + nameLength + valueLength + 32
            guard grown <= owner.maxHeaderListSize else {
                owner.trailerSizes[stream] = nil
                owner.delegate.headerListTooLarge(stream: stream)
                return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
            }
            owner.trailerSizes[stream] = grown
            return 0
        }
        head.listSize += nameLength + valueLength + 32
        if head.listSize > owner.maxHeaderListSize {
            owner.heads[stream] = nil
            owner.delegate.headerListTooLarge(stream: stream)
            return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        let nameBytes = UnsafeRawBufferPointer(start: name, count: nameLength)
        func text() -> String { String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self) }
        if nameBytes.elementsEqual(":method".utf8) {
            head.method = text()
        } else if nameBytes.elementsEqual(":path".utf8) {
            head.path = text()
        } else if nameBytes.elementsEqual("content-type".utf8) {
            head.contentType = text()
        } else if nameBytes.elementsEqual("authorization".utf8) {
            head.authorization = text()
        }
        owner.heads[stream] = head
        return 0
    }

    static let onFrameReceived: nghttp2_on_frame_recv_callback = { _, frame, userData in
        guard let frame else { return 0 }
        let owner = session(userData)
        let stream = CNghttp2_frame_stream_id(frame)
        let endStream = CNghttp2_frame_flags(frame) & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(CNghttp2_frame_type(frame)) {
        case NGHTTP2_HEADERS.rawValue:
            owner.trailerSizes[stream] = nil
            if let head = owner.heads.removeValue(forKey: stream) {
                owner.delegate.requestStarted(stream: stream, head: head, endStream: endStream)
            }
            if endStream { owner.delegate.requestEnded(stream: stream) }
        case NGHTTP2_DATA.rawValue:
            if endStream { owner.delegate.requestEnded(stream: stream) }
        default:
            break
        }
        return 0
    }

    static let onDataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, stream, data, length, userData in
        session(userData).delegate.requestData(stream: stream, UnsafeRawBufferPointer(start: data, count: length))
        return 0
    }

    static let onStreamClose: nghttp2_on_stream_close_callback = { _, stream, errorCode, userData in
        let owner = session(userData)
        owner.heads[stream] = nil
        owner.trailerSizes[stream] = nil
        owner.delegate.streamClosed(stream: stream, errorCode: errorCode)
        return 0
    }

    /// The data provider's read callback for every response body.
    static let readBody: nghttp2_data_source_read_callback = { _, stream, buffer, length, flags, _, userData in
        let owner = session(userData)
        switch owner.delegate.readBody(stream: stream, into: UnsafeMutableRawBufferPointer(start: buffer, count: length)) {
        case .deferred:
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        case .bytes(let count, let end):
            if end {
                flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                let trailers = owner.delegate.trailers(stream: stream)
                if !trailers.isEmpty {
                    flags!.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                    owner.submitTrailers(stream: stream, trailers)
                }
            }
            return count
        }
    }
}
