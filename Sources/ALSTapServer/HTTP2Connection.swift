import ALSTapALS
import ALSTapCore
import ALSTapFilter
import ALSTapFormats
import ALSTapHTTP2
import ALSTapMetrics
import ALSTapSystem
import Logging

/// An HTTP/2 connection, the transport of gRPC ingest calls (routed by path to the loop's
/// `IngestRegistry`) and of taps over `--http2-prior-knowledge`. Loop-confined.
final class HTTP2Connection: Connection, InitialBytesConsumer, HTTP2ServerSessionDelegate {
    private enum Role {
        case ingest(GRPCIngestStream)
        case tap(HTTP2TapStream)
        case fixed(BodyCursor)
    }

    private var session: HTTP2ServerSession!
    private var streams: [Int32: Role] = [:]
    /// Streams counted in the process-wide `http2StreamsActive` (released when they close).
    private var admitted = Set<Int32>()
    /// The final GOAWAY was submitted (an aged connection, or shutdown): no new streams.
    private var wentAway = false
    /// When the connection reaches `--max-stream-age` (set by its first ingest call).
    private var ageDeadlineNanos: UInt64?

    func start(with initialBytes: UnsafeRawBufferPointer) {
        context.http2Opened(self)
        do {
            session = try HTTP2ServerSession(delegate: self, settings: context.config.http2)
        } catch {
            context.logger.warning("HTTP/2 session could not start: \(error)")
            close()
            return
        }
        guard receive(initialBytes) else { return }
        if context.goAwaySent { goAway() }  // accepted before the listeners closed, started after
        flush()
    }

    /// Feeds bytes to nghttp2. On a fatal error: GOAWAY with its code, then close (false).
    private func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        do {
            try session.receive(bytes)
            return !isClosed
        } catch {
            context.logger.debug("HTTP/2 connection error: \(error)")
            context.counters.add(.http2ConnectionErrors)
            // Best effort: what is already queued goes first; a client that reads nothing gets no
            // GOAWAY either way, and the socket closes.
            _ = flushPending()
            write(session.fatalGoAwayFrame(for: error))
            close()
            return false
        }
    }

    override func readable() {
        // A bounded number of reads per event keeps one busy connection from starving the rest.
        for _ in 0..<4 {
            guard let bytes = readOnce() else { break }
            guard receive(bytes) else { return }
        }
        // Lines decoded from these reads go out to this loop's subscribers now, before the
        // gRPC replies and the other connections of this round.
        context.deliverInbox()
        flush()
    }

    override func writable() { flush() }

    /// Moves nghttp2's output to the socket, gathered into large writes; stops while the socket is full.
    func flush() {
        guard !isClosed, let session, flushPending() else { return }
        let scratch = context.sendScratch
        scratch.removeAll()
        var blocked = false
        do {
            _ = try session.send { chunk in
                scratch.append(chunk)
                if scratch.count >= 128 * 1024 {
                    blocked = !write(scratch.bytes)
                    scratch.removeAll()
                }
                return !blocked
            }
        } catch {
            close()
            return
        }
        if scratch.count > 0 {
            write(scratch.bytes)
            scratch.removeAll()
        }
        if !session.wantsRead && !session.wantsWrite && !hasPendingOutput { close() }
    }

    override func closing() {
        context.http2Closed(self)
        for (_, role) in streams {
            switch role {
            case .ingest(let stream): finishIngest(stream, cancelled: true)
            case .tap(let tap): context.closeTap(tap.subscriber)
            case .fixed: break
            }
        }
        streams.removeAll()
        context.counters.subtract(.http2StreamsActive, admitted.count)
        admitted.removeAll()
    }

    // MARK: HTTP2ServerSessionDelegate

    func streamOpening(stream: Int32) -> Bool {
        guard context.counters.get(.http2StreamsActive) < context.config.maxStreams else {
            context.counters.add(.http2StreamsRefused)
            return false
        }
        admitted.insert(stream)
        context.counters.add(.http2StreamsActive)
        return true
    }

    func headerListTooLarge(stream: Int32) {
        context.counters.add(.headerListTooLarge)
    }

    func requestStarted(stream: Int32, head: HTTP2RequestHead, endStream: Bool) {
        if head.contentType.hasPrefix("application/grpc") {
            guard role.contains(.ingest), head.method == "POST", let method = context.ingest.method(for: head.path) else {
                respond(stream, GRPCIngestStream.trailersOnly(GRPCStatusError(.unimplemented, "unknown method \(head.path)")))
                return
            }
            if let token = context.config.alsToken, !constantTimeEquals(head.authorization, "Bearer " + token) {
                context.counters.add(.alsUnauthenticated)
                respond(stream, GRPCIngestStream.trailersOnly(GRPCStatusError(.unauthenticated, "a bearer token is required")))
                return
            }
            if ageDeadlineNanos == nil {
                ageDeadlineNanos = context.config.streamAge.deadline(openedAt: monotonicNanos(), unit: Double.random(in: 0..<1))
            }
            streams[stream] = .ingest(GRPCIngestStream(call: method.makeCall(), isStreaming: method.isStreaming,
                                                       maxMessageBytes: context.config.maxMessageBytes))
            context.counters.add(.alsStreamsStarted)
            context.counters.add(.alsStreamsActive)
            return
        }
        guard role.contains(.tap) else {
            respondFixed(stream, .ingestOnly, headOnly: head.method == "HEAD")
            return
        }
        let route = HTTPRoute(method: head.method, target: head.path)
        guard route.isAuthorized(head.authorization, token: context.config.tapToken) else {
            context.counters.add(.unauthorized)
            respondFixed(stream, .unauthorized, headOnly: head.method == "HEAD")
            return
        }
        if case .stream(let request) = route, head.method == "GET" {
            let format = request.format
            let subscriber: Subscriber
            switch context.open(request) {
            case .opened(let opened): subscriber = opened
            case .refused(let response):
                respondFixed(stream, response, headOnly: false)
                return
            }
            let tap = HTTP2TapStream(stream: stream, subscriber: subscriber, connection: self)
            subscriber.transport = tap
            streams[stream] = .tap(tap)
            respond(stream, [(":status", "200"), ("content-type", format.contentType), ("cache-control", "no-cache")]
                        + format.streamHeaders.map { ($0.0.lowercased(), $0.1) },
                    hasBody: true)
            return
        }
        respondFixed(stream, route.fixedResponse(counters: context.counters, readiness: context.readiness()),
                     headOnly: head.method == "HEAD")
    }

    private func respondFixed(_ stream: Int32, _ response: HTTPResponse, headOnly: Bool) {
        streams[stream] = .fixed(BodyCursor(headOnly ? [] : Array(response.body.utf8)))
        respond(stream, [(":status", String(response.status)), ("content-type", response.contentType),
                         ("content-length", String(response.body.utf8.count))]
                    + response.extraHeaders.map { ($0.0.lowercased(), $0.1) }, hasBody: true)
    }

    /// Shutdown, step 1: HTTP/2's graceful notice (GOAWAY with the highest stream id).
    func announceShutdown() {
        session?.announceShutdown()
        flush()
    }

    /// Shutdown, step 2: the final GOAWAY, and Envoy's log streams end with UNAVAILABLE (each
    /// after the message it is receiving) so its next batch opens a stream on another replica.
    func goAway() {
        guard session != nil else { return }
        sendGoAway()
        endIngestCalls(GRPCIngestStream.shuttingDown)
        flush()
    }

    /// Every tick: once the connection reached `--max-stream-age` (and unless the server is
    /// draining, which ends them anyway), its streaming calls end between messages and it says
    /// GOAWAY (no new streams; the open ones go on, unary calls to their end), so Envoy opens
    /// its next stream on a new connection, which the Service may send to any replica. A call
    /// alstap ended that its client still holds open long after is reset.
    func tick(now: UInt64, draining: Bool) {
        guard ageDeadlineNanos != nil else { return }  // no ingest call yet
        var changed = false
        for (stream, role) in streams {
            if case .ingest(let als) = role, als.lingers(now: now) {
                stopLateMessages(stream, als)
                changed = true
            }
        }
        if !draining, !wentAway, let deadline = ageDeadlineNanos, now >= deadline {
            ageDeadlineNanos = .max
            // The calls between messages end first, then GOAWAY (before any new stream can come):
            // a call still inside a message ends after it, on a connection that takes no more.
            endIngestCalls(GRPCIngestStream.aged)
            sendGoAway()
            changed = true
        }
        if changed { flush() }
    }

    /// Asks every streaming call to end with `status` and ends those between messages now (the
    /// rest after their next whole message).
    private func endIngestCalls(_ status: GRPCStatusError) {
        for (stream, role) in streams {
            guard case .ingest(let als) = role else { continue }
            als.endSoon(status)
            endIfDue(stream, als, passedBoundary: false)
        }
    }

    /// Sends the status of a call alstap ends, once it is between messages or has just completed
    /// one (a message begun after it is taken late).
    private func endIfDue(_ stream: Int32, _ als: GRPCIngestStream, passedBoundary: Bool) {
        guard let status = als.dueEnd(now: monotonicNanos(), passedBoundary: passedBoundary) else { return }
        context.counters.add(status == GRPCIngestStream.aged ? .alsStreamsAged : .alsStreamsEndedForShutdown)
        respond(stream, GRPCIngestStream.trailersOnly(status))
    }

    private func sendGoAway() {
        guard !wentAway else { return }
        wentAway = true
        session.goAway()
    }

    func requestData(stream: Int32, _ chunk: UnsafeRawBufferPointer) {
        defer { session.consume(stream: stream, count: chunk.count) }
        guard case .ingest(let als) = streams[stream] else { return }
        if als.answered {
            if als.takesLateMessages { takeLate(stream, chunk, als) }
            return
        }
        var completed = 0
        do {
            let call = als.call
            try als.deframer.feed(chunk) { (payload) throws(GRPCStatusError) in
                completed += 1
                try call.receive(message: payload)
            }
        } catch {
            fail(stream, als, error)
            return
        }
        // A call being ended ends here if a message completed in this chunk (under load Envoy's
        // messages straddle DATA frames, so the chunk may well end inside the next one).
        if als.ending != nil { endIfDue(stream, als, passedBoundary: completed > 0) }
        holdBuffered(als, stream: stream)
    }

    /// A message sent before the client saw the status alstap ended its call with: decoded like
    /// any other. Its partial bytes count in the bound; past it, or on a bad message, the call
    /// takes no more.
    private func takeLate(_ stream: Int32, _ chunk: UnsafeRawBufferPointer, _ als: GRPCIngestStream) {
        let call = als.call
        let counters = context.counters
        do {
            try als.deframer.feed(chunk) { (payload) throws(GRPCStatusError) in
                counters.add(.alsLateMessages)
                try call.receive(message: payload)
            }
        } catch {
            stopLateMessages(stream, als)
            return
        }
        holdBuffered(als, stream: stream)
    }

    /// A call alstap ended takes no more: reset (NO_ERROR, the call is over), its bytes let go.
    private func stopLateMessages(_ stream: Int32, _ als: GRPCIngestStream) {
        als.takesLateMessages = false
        releaseBuffered(als)
        session.resetStream(stream, errorCode: 0)
    }

    func requestEnded(stream: Int32) {
        guard case .ingest(let als) = streams[stream], !als.answered else { return }
        let message: [UInt8]
        do {
            try als.deframer.finish()
            message = try als.call.finish()
        } catch {
            fail(stream, als, error)
            return
        }
        als.answered = true
        als.prepareResponse(message)
        respond(stream, [(":status", "200"), ("content-type", "application/grpc")], hasBody: true)
    }

    func readBody(stream: Int32, into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyRead {
        switch streams[stream] {
        case .ingest(let als):
            return als.response.read(into: buffer)
        case .tap(let tap):
            return tap.read(into: buffer)
        case .fixed(var body):
            let read = body.read(into: buffer)
            streams[stream] = .fixed(body)
            return read
        case nil:
            return .bytes(count: 0, end: true)
        }
    }

    func trailers(stream: Int32) -> [HTTP2Header] {
        guard case .ingest = streams[stream] else { return [] }
        return [HTTP2Header("grpc-status", "0")]
    }

    func streamClosed(stream: Int32, errorCode: UInt32) {
        if admitted.remove(stream) != nil { context.counters.subtract(.http2StreamsActive) }
        switch streams.removeValue(forKey: stream) {
        case .ingest(let als): finishIngest(als, cancelled: als.response.sent == 0 && als.status.code == .ok)
        case .tap(let tap):
            // The client reset a tap before it ended: work it caused, counted (rapid-reset abuse).
            if errorCode != 0 { context.counters.add(.tapStreamsReset) }
            context.closeTap(tap.subscriber)
        case .fixed, nil: break
        }
    }

    /// Accounts for the bytes of a message `als` holds while it arrives in pieces; over the
    /// process-wide bound, the stream ends with RESOURCE_EXHAUSTED and lets them go (one that
    /// alstap already ended takes no more late messages).
    private func holdBuffered(_ als: GRPCIngestStream, stream: Int32) {
        let now = als.deframer.bufferedBytes
        let grew = now > als.bufferedCounted
        context.counters.add(.bufferedMessageBytes, now - als.bufferedCounted)
        als.bufferedCounted = now
        guard grew, context.counters.get(.bufferedMessageBytes) > context.config.maxBufferedMessageBytes else { return }
        if als.answered {
            if als.takesLateMessages { stopLateMessages(stream, als) }
            return
        }
        fail(stream, als, GRPCStatusError(.resourceExhausted,
                                          "alstap holds too many partial messages (--max-buffered-message-bytes)",
                                          reason: .bufferedTooLarge))
    }

    // MARK: Helpers

    private func fail(_ stream: Int32, _ als: GRPCIngestStream, _ error: GRPCStatusError) {
        als.answered = true
        als.status = error
        releaseBuffered(als)
        if let counter = Counters.Name(refusal: error.reason) { context.counters.add(counter) }
        if error.code != .unavailable { context.logger.info("ingest stream \(stream) failed: \(error)") }
        respond(stream, GRPCIngestStream.trailersOnly(error))
    }

    /// Drops the partial message a finished stream holds, and its share of the bound.
    private func releaseBuffered(_ als: GRPCIngestStream) {
        // What was counted, not what the deframer holds now: a message completed and failed in
        // the same chunk has left the deframer but is still on the account.
        context.counters.subtract(.bufferedMessageBytes, als.bufferedCounted)
        als.bufferedCounted = 0
        als.deframer = GRPCDeframer(maxMessageBytes: als.deframer.maxMessageBytes)
    }

    private func finishIngest(_ als: GRPCIngestStream, cancelled: Bool) {
        releaseBuffered(als)
        context.counters.subtract(.alsStreamsActive)
        // The last ingest stream of a draining server: every loop's subscribers may end now.
        if context.draining && context.counters.get(.alsStreamsActive) == 0 { context.fanout.wakeAll() }
        if cancelled {
            context.counters.add(.alsStreamsCancelled)
            return
        }
        switch als.status.code {
        case .ok: context.counters.add(.alsStreamsOK)
        case .invalidArgument: context.counters.add(.alsStreamsInvalidArgument)
        case .resourceExhausted: context.counters.add(.alsStreamsResourceExhausted)
        case .unimplemented: context.counters.add(.alsStreamsUnimplemented)
        case .internal: context.counters.add(.alsStreamsInternal)
        case .unavailable: context.counters.add(.alsStreamsUnavailable)  // alstap ended it
        case .unauthenticated: break  // refused before a stream was kept
        }
    }

    private func respond(_ stream: Int32, _ headers: [(String, String)], hasBody: Bool = false) {
        do {
            try session.respond(stream: stream, headers: headers.map { HTTP2Header($0.0, $0.1) }, hasBody: hasBody)
        } catch {
            session.resetStream(stream, errorCode: 2)  // INTERNAL_ERROR
        }
    }

    /// A tap stream has new lines: let nghttp2 pull them and send.
    func tapHasData(stream: Int32) {
        session.resumeBody(stream: stream)
        flush()
    }
}
