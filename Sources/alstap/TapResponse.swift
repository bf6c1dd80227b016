import ALSTapHTTP1

/// A `/tap` response read as its bytes arrive (no I/O): a 200's body lines, or any other status's
/// body as the rejection's text.
struct TapResponse {
    /// A rejection's text is an error message; more than this is cut.
    static let maxRejectionBytes = 64 * 1024

    private var reader = HTTP1ResponseReader()
    private var status: Int?
    /// A 200's partial last line, or a rejection's body so far.
    private var pending: [UInt8] = []
    /// Set once the response is over (its last chunk, its length, or a malformed byte).
    private(set) var end: TapClient.Failure?

    /// The lines `bytes` completed (only a 200 response has lines). Check `end` afterwards.
    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [String] {
        let body = feedBody(bytes)
        var lines: [String] = []
        if status == 200 {
            pending += body
            var start = 0
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                lines.append(String(decoding: pending[start..<newline], as: UTF8.self))
                start = newline + 1
            }
            pending.removeFirst(start)
        }
        return lines
    }

    /// A 200's body bytes `bytes` carried (a capture: not lines). Check `end` afterwards.
    mutating func feedRaw(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        let body = feedBody(bytes)
        return status == 200 ? body : []
    }

    /// Reads the response; returns a 200's body bytes, keeps another status's as its rejection.
    private mutating func feedBody(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        guard end == nil else { return [] }
        var body: [UInt8] = []
        var status = self.status
        do {
            try reader.feed(bytes) { event in
                switch event {
                case .head(let code): status = code
                case .body(let chunk): body += chunk
                }
            }
        } catch {
            end = .lost
        }
        self.status = status
        if status != 200 { pending += body.prefix(Self.maxRejectionBytes - pending.count) }
        if end == nil && reader.isComplete { end = finished() }
        return body
    }

    /// The connection closed: how the response ended.
    func closed() -> TapClient.Failure {
        end ?? finished()
    }

    private func finished() -> TapClient.Failure {
        guard let status, status != 200 else { return .lost }
        return .rejected(status: status, body: String(decoding: pending, as: UTF8.self).trimmingCharacters(in: "\n "))
    }
}
