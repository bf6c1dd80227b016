/// The request head of one HTTP/2 stream (only what alstap routes on).
public struct HTTP2RequestHead: Sendable, Equatable {
    public var method = ""
    public var path = ""
    public var contentType = ""
    public var authorization = ""
    /// Bytes of the header list so far, as SETTINGS_MAX_HEADER_LIST_SIZE counts them.
    var listSize = 0

    public init() {}
}

/// One header field to send.
public struct HTTP2Header: Sendable, Equatable {
    public let name: String
    public let value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// What a response body source produced when nghttp2 asked for bytes.
public enum HTTP2BodyRead: Equatable {
    /// `count` bytes were written; `end` ends the body (then `trailers`, if any, close the stream).
    case bytes(count: Int, end: Bool)
    /// Nothing to send now; call `resumeBody(stream:)` when there is.
    case deferred
}

/// An error from nghttp2, with its code and nghttp2's own words.
public struct HTTP2Error: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let call: String
    public let message: String

    public var description: String { "\(call): \(message) (\(code))" }
}

/// The events a server session reports; implemented by the connection that owns the session.
public protocol HTTP2ServerSessionDelegate: AnyObject {
    /// A request's headers are complete. `endStream` when the request has no body.
    func requestStarted(stream: Int32, head: HTTP2RequestHead, endStream: Bool)
    /// A chunk of request body, valid only during the call; the delegate returns its
    /// flow-control credit with `consume` once the bytes are processed.
    func requestData(stream: Int32, _ chunk: UnsafeRawBufferPointer)
    /// The client half-closed the stream (END_STREAM after headers or data).
    func requestEnded(stream: Int32)
    /// nghttp2 wants response body bytes for `stream`.
    func readBody(stream: Int32, into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyRead
    /// Trailers to send after the body of `stream` ended (empty: end the stream with the body).
    func trailers(stream: Int32) -> [HTTP2Header]
    /// The stream is gone (finished or reset); `errorCode` is 0 for a clean close.
    func streamClosed(stream: Int32, errorCode: UInt32)
    /// A client opens `stream`: false refuses it (reset before its headers are kept), for a
    /// bound on the streams of the whole process.
    func streamOpening(stream: Int32) -> Bool
    /// `stream`'s header list was over SETTINGS_MAX_HEADER_LIST_SIZE: it was reset unanswered.
    func headerListTooLarge(stream: Int32)
}

extension HTTP2ServerSessionDelegate {
    public func streamOpening(stream: Int32) -> Bool { true }
    public func headerListTooLarge(stream: Int32) {}
}
