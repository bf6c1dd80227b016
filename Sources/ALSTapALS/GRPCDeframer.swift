/// Splits a gRPC request body into length-prefixed messages (1 flag byte, 4 length bytes, payload).
///
/// Bytes arrive in DATA chunks split at any byte. A message that lies whole inside one chunk is
/// handed out in place, without a copy; only a message spanning chunks is gathered into `partial`.
public struct GRPCDeframer {
    public let maxMessageBytes: Int
    /// Accept the replica format's notice frames (flag `noticeFlag`): only from alstap peers.
    public let acceptsNotices: Bool
    /// The flag of a notice frame (see `ReplicaFrames` in ALSTapFormats).
    public static let noticeFlag: UInt8 = 0x80
    private var payloadIsNotice = false
    private var header: UInt64 = 0
    private var headerBytes = 0
    private var payloadLength = 0
    private var readingPayload = false
    private var partial: [UInt8] = []

    public init(maxMessageBytes: Int, acceptsNotices: Bool = false) {
        self.maxMessageBytes = maxMessageBytes
        self.acceptsNotices = acceptsNotices
    }

    /// Bytes of a message that spans chunks, held until it is whole.
    public var bufferedBytes: Int { partial.count }

    /// True between messages: the body may end here.
    public var isAtMessageBoundary: Bool { !readingPayload && headerBytes == 0 }

    /// Feeds one chunk; calls `onMessage` for each complete payload, in order.
    public mutating func feed(
        _ chunk: UnsafeRawBufferPointer,
        _ onMessage: (UnsafeRawBufferPointer) throws(GRPCStatusError) -> Void
    ) throws(GRPCStatusError) {
        try feedFrames(chunk) { (_, payload) throws(GRPCStatusError) in try onMessage(payload) }
    }

    /// Feeds one chunk; calls `onFrame` for each complete payload, telling notices (only with
    /// `acceptsNotices`) from messages.
    public mutating func feedFrames(
        _ chunk: UnsafeRawBufferPointer,
        _ onFrame: (_ isNotice: Bool, UnsafeRawBufferPointer) throws(GRPCStatusError) -> Void
    ) throws(GRPCStatusError) {
        guard let base = chunk.baseAddress else { return }
        var offset = 0
        let end = chunk.count
        while offset < end {
            if !readingPayload {
                while headerBytes < 5 && offset < end {
                    header = header << 8 | UInt64(base.load(fromByteOffset: offset, as: UInt8.self))
                    headerBytes += 1
                    offset += 1
                }
                guard headerBytes == 5 else { return }
                try startPayload()
                if payloadLength == 0 {
                    try finishMessage(UnsafeRawBufferPointer(start: base, count: 0), onFrame)
                    continue
                }
            }
            let available = end - offset
            if partial.isEmpty && available >= payloadLength {
                let message = UnsafeRawBufferPointer(start: base + offset, count: payloadLength)
                offset += payloadLength
                try finishMessage(message, onFrame)
                continue
            }
            let take = min(available, payloadLength - partial.count)
            // No reservation for the declared length: 5 bytes may claim 4 MiB; memory follows the
            // bytes that actually arrived.
            partial.append(contentsOf: UnsafeRawBufferPointer(start: base + offset, count: take))
            offset += take
            if partial.count == payloadLength {
                let gathered = partial
                partial = []
                var failure: GRPCStatusError?
                gathered.withUnsafeBytes { bytes in
                    do throws(GRPCStatusError) { try finishMessage(bytes, onFrame) } catch { failure = error }
                }
                if let failure { throw failure }
            }
        }
    }

    /// Called when the body ends: an unfinished message is an error.
    public func finish() throws(GRPCStatusError) {
        if !isAtMessageBoundary {
            throw GRPCStatusError(.internal, "request body ended inside a gRPC message", reason: .truncated)
        }
    }

    private mutating func startPayload() throws(GRPCStatusError) {
        let flag = UInt8(truncatingIfNeeded: header >> 32)
        let length = Int(header & 0xFFFF_FFFF)
        if flag & 1 != 0 {
            throw GRPCStatusError(.unimplemented, "compressed gRPC messages are not supported (no grpc-encoding negotiated)",
                                  reason: .compressed)
        }
        payloadIsNotice = acceptsNotices && flag == Self.noticeFlag
        if length > maxMessageBytes {
            throw GRPCStatusError(.resourceExhausted, "gRPC message of \(length) bytes exceeds the maximum of \(maxMessageBytes)",
                                  reason: .messageTooLarge)
        }
        payloadLength = length
        readingPayload = true
    }

    private mutating func finishMessage(
        _ message: UnsafeRawBufferPointer,
        _ onFrame: (_ isNotice: Bool, UnsafeRawBufferPointer) throws(GRPCStatusError) -> Void
    ) throws(GRPCStatusError) {
        let isNotice = payloadIsNotice
        payloadIsNotice = false
        readingPayload = false
        headerBytes = 0
        header = 0
        payloadLength = 0
        try onFrame(isNotice, message)
    }
}

extension ByteWriter {
    /// The 5 bytes before a gRPC message: its flag, then its length (big-endian), as
    /// `GRPCDeframer` reads them.
    public func appendGRPCPrefix(flag: UInt8, length: Int) {
        append(flag)
        for shift in stride(from: 24, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: length >> shift)) }
    }
}
