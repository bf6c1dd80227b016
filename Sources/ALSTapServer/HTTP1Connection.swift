import ALSTapCore
import ALSTapFilter
import ALSTapFormats
import ALSTapHTTP1
import ALSTapMetrics
import ALSTapSystem
#if canImport(Glibc)
import Glibc
#endif

/// An HTTP/1.1 connection: `/tap` as a chunked stream, plus health and stats. Loop-confined.
final class HTTP1Connection: Connection, InitialBytesConsumer, HeadDeadline, SubscriberTransport {
    private var received: [UInt8] = []
    private var subscriber: Subscriber?
    private var closeWhenFlushed = false
    /// Bytes of the current request's Content-Length body still to read and drop.
    private var bodyBytesToSkip = 0
    /// An OTLP/HTTP body being read (ingest listener), with the bytes of it counted in
    /// `Counters.bufferedMessageBytes` and whether the connection stays open after the answer.
    private var upload: (reader: RequestBodyReader, counted: Int, keepAlive: Bool)?
    /// Pipelined requests wait for `writable()`: a turn's share of them was answered.
    private var awaitingWritable = false
    private(set) var headDeadlineNanos: UInt64 = 0

    /// Slices gathered into one chunk per writev (plus the chunk header and trailing CRLF).
    private static let maxSlicesPerWrite = 62
    /// Also the most a stuck client leaves in the backlog (the unsent tail of one chunk).
    private static let maxBytesPerWrite = 256 << 10
    /// Pipelined requests answered per turn of the loop: one client's queue of requests must not
    /// keep the loop from its other connections.
    private static let maxAnswersPerTurn = 16

    func start(with initialBytes: UnsafeRawBufferPointer) {
        awaitHead()
        received.append(contentsOf: initialBytes)
        processRequests()
    }

    func headTimedOut() { close() }

    override func closing() {
        releaseUpload()
        context.unwatchHead(self)
        if let subscriber { context.closeTap(subscriber) }
    }

    override func readable() {
        guard let bytes = readOnce() else { return }
        // A tap client sends nothing more after its request; reads only notice it leaving.
        guard subscriber == nil else { return }
        received.append(contentsOf: bytes)
        processRequests()
    }

    override func writable() {
        if closeWhenFlushed {
            close()
        } else if subscriber != nil {
            writeQueuedLines()
        } else {
            awaitingWritable = false
            processRequests()  // pipelined requests held back: answers were unwritten, or a turn's share given
        }
    }

    private func awaitHead() {
        headDeadlineNanos = monotonicNanos() + context.config.headTimeoutMillis * 1_000_000
        context.watchHead(self)
    }

    /// Answers the complete requests received (pipelining), until one streams or closes, an answer
    /// is left unwritten, or a turn's share is answered: the rest wait for `writable()`, so a client
    /// that sends without reading cannot grow the backlog nor keep the loop to itself.
    private func processRequests() {
        var start = 0  // bytes of `received` used up; removed once, not per request
        var answered = 0
        defer {
            if closeWhenFlushed || isClosed || subscriber != nil {
                received = []  // nothing after the last answer will be parsed
            } else {
                received.removeFirst(start)
            }
        }
        while !isClosed && subscriber == nil && !closeWhenFlushed {
            if bodyBytesToSkip > 0 {
                let skipped = min(bodyBytesToSkip, received.count - start)
                start += skipped
                bodyBytesToSkip -= skipped
                if bodyBytesToSkip > 0 { return }
            }
            if upload != nil {
                start += readUpload(from: start)
                if upload != nil { return }
                continue
            }
            if hasPendingOutput || awaitingWritable {
                // Unanswered requests are kept up to 4 × maxHeadBytes (plus the read that crossed it).
                // Past that the client is closed without an answer and counted as a head over the
                // limit: simpler than taking the socket out of the loop's read set until it drains.
                if received.count - start > 4 * context.config.maxHeadBytes {
                    context.counters.add(.headTooLarge)
                    close()
                }
                return
            }
            if answered == Self.maxAnswersPerTurn {
                if received.count > start {
                    // Resumed by the writable event: next turn, or once the client reads if the
                    // socket's buffer is nearly full.
                    awaitingWritable = true
                    watchWritable(true)
                }
                return
            }
            let result = received.withUnsafeBytes {
                HTTP1RequestParser.parse(UnsafeRawBufferPointer(rebasing: $0[start...]),
                                         maxHeadBytes: context.config.maxHeadBytes)
            }
            switch result {
            case .incomplete:
                return
            case .tooLarge:
                context.counters.add(.headTooLarge)
                finish(HTTP1Response.simple(status: 431, reason: "Request Header Fields Too Large",
                                            body: "request head over \(context.config.maxHeadBytes) bytes\n", close: true))
            case .malformed(let reason):
                finish(HTTP1Response.simple(status: 400, reason: "Bad Request", body: reason + "\n", close: true))
            case .complete(let head, let consumed):
                start += consumed
                answered += 1
                context.unwatchHead(self)
                answerFramed(head)
            }
        }
    }

    /// Answers a request whose body framing alstap can follow (RFC 9112 §6.3); else 400 or 413 and close.
    private func answerFramed(_ head: HTTP1RequestHead) {
        if role.contains(.ingest), let decision = OTLPHTTP.decide(head, config: context.config) {
            switch decision {
            case .readBody(let reader):
                upload = (reader, 0, head.keepAlive)
                awaitHead()  // the body too must arrive within the head timeout
            case .refuse(let status, let reason, let message):
                context.counters.add(.otlpHTTPRefused)
                finish(OTLPHTTP.refusal(status: status, reason: reason, message: message, close: true))
            }
            return
        }
        switch HTTP1RequestParser.bodyFraming(of: head) {
        case .noBody:
            answer(head)
        case .contentLength(let length) where length <= context.config.maxHeadBytes:
            // No route takes a body. One up to maxHeadBytes (the bound a head has) is read and
            // dropped as it arrives, so the next request starts after it rather than inside it.
            bodyBytesToSkip = length
            answer(head)
        case .contentLength:
            finish(HTTP1Response.simple(status: 413, reason: "Content Too Large",
                                        body: "request body over \(context.config.maxHeadBytes) bytes\n", close: true))
        case .transferEncoded:
            finish(HTTP1Response.simple(status: 400, reason: "Bad Request",
                                        body: "transfer-encoding is not accepted\n", close: true))
        case .malformed(let reason):
            finish(HTTP1Response.simple(status: 400, reason: "Bad Request", body: reason + "\n", close: true))
        }
    }

    /// Feeds received bytes from `start` to the OTLP body being read; answers once it is whole.
    /// Returns the bytes used.
    private func readUpload(from start: Int) -> Int {
        guard var current = upload else { return 0 }
        let (consumed, outcome) = received.withUnsafeBytes { current.reader.consume(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        let grown = current.reader.body.count - current.counted
        context.counters.add(.bufferedMessageBytes, grown)
        current.counted += grown
        upload = current
        if grown > 0, context.counters.get(.bufferedMessageBytes) > context.config.maxBufferedMessageBytes {
            context.counters.add(.bufferedTooLarge)
            releaseUpload()
            finish(OTLPHTTP.refusal(status: 503, reason: "Service Unavailable", code: 8,
                                    message: "too many bytes of requests in flight (--max-buffered-message-bytes)", close: true))
            return consumed
        }
        switch outcome {
        case .needMore:
            break
        case .complete:
            let body = current.reader.body
            releaseUpload()
            context.unwatchHead(self)
            let response = OTLPHTTP.answer(body, ingest: context.otlp, counters: context.counters, close: !current.keepAlive)
            if current.keepAlive {
                write(response)
                awaitHead()
            } else {
                finish(response)
            }
        case .tooLarge:
            releaseUpload()
            context.counters.add(.decodeTooLarge)
            finish(OTLPHTTP.refusal(status: 413, reason: "Content Too Large",
                                    message: "request body over \(context.config.maxMessageBytes) bytes (--max-message-bytes)", close: true))
        case .malformed(let reason):
            releaseUpload()
            finish(OTLPHTTP.refusal(status: 400, reason: "Bad Request", message: reason, close: true))
        }
        return consumed
    }

    private func releaseUpload() {
        guard let current = upload else { return }
        context.counters.subtract(.bufferedMessageBytes, current.counted)
        upload = nil
    }

    private func answer(_ head: HTTP1RequestHead) {
        // The ingest listener serves gRPC only (over HTTP/2): nothing of the tap API answers here.
        guard role.contains(.tap) else {
            respond(.ingestOnly, to: head)
            return
        }
        let route = HTTPRoute(method: head.method, target: head.target)
        guard route.isAuthorized(head.header("authorization"), token: context.config.tapToken) else {
            context.counters.add(.unauthorized)
            respond(.unauthorized, to: head)
            return
        }
        if case .stream(let request) = route {
            guard head.method == "GET" else {
                respond(HTTPResponse(200, "OK", ""), to: head)
                return
            }
            let subscriber: Subscriber
            switch context.open(request) {
            case .opened(let opened): subscriber = opened
            case .refused(let response):
                respond(response, to: head)
                return
            }
            // Attached before the first write: a client that already left makes that write fail
            // and close the connection, and `closing` must then find the subscriber to release.
            subscriber.transport = self
            self.subscriber = subscriber
            write(HTTP1Response.streamingHead(contentType: request.format.contentType,
                                              extraHeaders: request.format.streamHeaders))
            writeQueuedLines()  // a replay may have queued lines, or ended the stream already
            return
        }
        respond(route.fixedResponse(counters: context.counters, readiness: context.readiness()), to: head)
    }

    private func respond(_ response: HTTPResponse, to head: HTTP1RequestHead) {
        var bytes = HTTP1Response.simple(status: response.status, reason: response.reason,
                                         contentType: response.contentType, body: response.body,
                                         close: !head.keepAlive, extraHeaders: response.extraHeaders)
        if head.method == "HEAD" { bytes.removeLast(response.body.utf8.count) }
        if head.keepAlive {
            write(bytes)
            awaitHead()
        } else {
            finish(bytes)
        }
    }

    /// Sends a last response and closes once it is out.
    private func finish(_ bytes: [UInt8]) {
        closeWhenFlushed = true
        write(bytes)
        if !hasPendingOutput { close() }
    }

    func subscriberHasData() { writeQueuedLines() }

    /// Writes queued lines as HTTP chunks with writev, straight from the shared buffers.
    /// A partial write leaves the rest of the chunk in the connection's backlog.
    private func writeQueuedLines() {
        guard let subscriber else { return }
        defer {
            if !isClosed && subscriber.isFinished && !closeWhenFlushed {
                closeWhenFlushed = true
                write(HTTP1Response.lastChunk)
                if !hasPendingOutput { close() }
            }
        }
        while !isClosed && flushPending() && subscriber.hasData {
            var header: (UInt64, UInt64, UInt64) = (0, 0, 0)
            var crlf: (UInt8, UInt8) = (13, 10)
            let written: Int? = withUnsafeMutableBytes(of: &header) { headerBytes in
                withUnsafeMutableBytes(of: &crlf) { crlfBytes in
                    withUnsafeTemporaryAllocation(of: iovec.self, capacity: Self.maxSlicesPerWrite + 2) { iov in
                        var slices = 0
                        var payload = 0
                        subscriber.forEachQueuedSlice { slice in
                            let take = min(slice.count, Self.maxBytesPerWrite - payload)
                            iov[slices + 1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: slice.baseAddress), iov_len: take)
                            slices += 1
                            payload += take
                            return slices < Self.maxSlicesPerWrite && payload < Self.maxBytesPerWrite
                        }
                        let headerLength = HTTP1Response.chunkHeader(payload, into: headerBytes)
                        iov[0] = iovec(iov_base: headerBytes.baseAddress, iov_len: headerLength)
                        iov[slices + 1] = iovec(iov_base: crlfBytes.baseAddress, iov_len: 2)
                        let total = headerLength + payload + 2
                        let result: IOResult
                        do {
                            result = try Syscalls.writev(fd, iov.baseAddress!, count: slices + 2)
                        } catch {
                            return nil
                        }
                        guard case .processed(let sent) = result else {
                            watchWritable(true)
                            return 0
                        }
                        context.counters.add(.bytesSent, sent)
                        if sent < total { keepUnsent(iov, count: slices + 2, skipping: sent) }
                        subscriber.consume(payload)
                        return sent
                    }
                }
            }
            guard let written else {
                close()
                return
            }
            if written == 0 { return }
        }
    }

    /// Copies the unsent tail of a partially written chunk into the backlog, so the chunk completes.
    private func keepUnsent(_ iov: UnsafeMutableBufferPointer<iovec>, count: Int, skipping sent: Int) {
        var skip = sent
        var tail: [UInt8] = []
        for i in 0..<count {
            let part = UnsafeRawBufferPointer(start: iov[i].iov_base, count: iov[i].iov_len)
            if skip >= part.count {
                skip -= part.count
                continue
            }
            tail.append(contentsOf: part[skip...])
            skip = 0
        }
        write(tail)
    }
}
