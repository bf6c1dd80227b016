import ALSTapALS
import CEnvoyProtos
import CProtobufC

/// Walks an ExportLogsServiceRequest's wire bytes before protobuf-c unpacks them: the nesting of
/// `AnyValue`s (arrays and key-value lists nest without end in the schema, and protobuf-c's
/// unpack recurses on them) and the number of log records are checked without allocating.
final class OTLPWireCheck {
    let limits: DecodeLimits
    private static let schema = withUnsafePointer(
        to: opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor) { WireSchema(root: $0) }
    private let schema = OTLPWireCheck.schema

    init(limits: DecodeLimits) {
        self.limits = limits
    }

    static let malformed = GRPCStatusError(.invalidArgument, "ExportLogsServiceRequest does not decode (bad wire format)",
                                           reason: .invalidProtobuf)

    /// Throws INVALID_ARGUMENT for bad wire format or nesting over the limit, RESOURCE_EXHAUSTED
    /// for more log records than a message may carry.
    func check(_ payload: UnsafeRawBufferPointer) throws(GRPCStatusError) {
        guard let base = payload.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        do {
            try schema.check(base, 0..<payload.count, node: schema.root, depth: 0, limit: limits.maxDepth)
            var records = 0
            try forEach(field: 1, in: WireReader(base: base, range: 0..<payload.count)) { resource throws(GRPCStatusError) in
                try forEach(field: 2, in: WireReader(base: base, range: resource)) { scope throws(GRPCStatusError) in
                    try forEach(field: 2, in: WireReader(base: base, range: scope)) { _ throws(GRPCStatusError) in
                        records += 1
                        if records > limits.maxEntries {
                            throw GRPCStatusError(.resourceExhausted, "request has more than \(limits.maxEntries) log records",
                                                  reason: .tooManyEntries)
                        }
                    }
                }
            }
        } catch where error.reason == .invalidProtobuf {
            throw Self.malformed
        }
    }

    /// Calls `body` with each length-delimited occurrence of `field`.
    private func forEach(field: UInt32, in reader: WireReader,
                         _ body: (Range<Int>) throws(GRPCStatusError) -> Void) throws(GRPCStatusError) {
        var reader = reader
        while !reader.atEnd {
            let (number, wireType) = try reader.tag()
            guard number == field, wireType == 2 else {
                try reader.skip(wireType)
                continue
            }
            try body(try reader.lengthDelimited())
        }
    }
}
