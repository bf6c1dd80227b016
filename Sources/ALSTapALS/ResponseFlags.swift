import CEnvoyProtos
import CProtobufC

/// Envoy's short codes for `ResponseFlags` (UH, UF, URX, …), read with protobuf-c's field table.
///
/// ResponseFlags has 27 bool fields and one message field (13, unauthorized → UAEX); reading
/// them by the descriptor's offsets keeps the list of codes in one place, ordered by field number.
struct ResponseFlagCodes {
    /// Envoy's short code for field number N at index N-1.
    private static let codes: [StaticString] = [
        "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE",
        "DC", "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DR",
    ]

    private struct Field {
        let offset: Int
        let isMessage: Bool
        let code: StaticString
    }

    private let fields: [Field]

    init() {
        let descriptor = envoy__data__accesslog__v3__response_flags__descriptor
        var fields: [Field] = []
        for i in 0..<Int(descriptor.n_fields) {
            let field = descriptor.fields[i]
            let number = Int(field.id)
            guard number >= 1 && number <= Self.codes.count else { continue }
            fields.append(Field(offset: Int(field.offset), isMessage: field.type == PROTOBUF_C_TYPE_MESSAGE,
                                code: Self.codes[number - 1]))
        }
        self.fields = fields.sorted { $0.offset < $1.offset }
    }

    /// Calls `body` with the code of every flag set, in field order.
    @inline(__always)
    func forEachSet(_ flags: UnsafeRawPointer, _ body: (StaticString) -> Void) {
        for field in fields {
            let isSet = field.isMessage
                ? flags.load(fromByteOffset: field.offset, as: UnsafeRawPointer?.self) != nil
                : flags.load(fromByteOffset: field.offset, as: protobuf_c_boolean.self) != 0
            if isSet { body(field.code) }
        }
    }
}
