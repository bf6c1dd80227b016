import CEnvoyProtos
import CProtobufC

/// Envoy's short codes for `ResponseFlags` (UH, UF, URX, …), read with protobuf-c's field table.
///
/// ResponseFlags has 27 bool fields and one message field (13, unauthorized → UAEX); reading
/// them by the descriptor's offsets keeps the list of codes in one place, ordered by field number.
public struct ResponseFlagCodes: Sendable {
    /// Envoy's short code for field number N at index N-1.
    private static let codes: [StaticString] = [
        "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE",
        "DC", "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DR",
    ]

    private struct Field {
        let offset: Int
        let isMessage: Bool
        let number: Int
        let code: StaticString
    }

    /// The field number of a short code (`UH` → 2), for filters; nil if Envoy has no such flag.
    public static func fieldNumber(of code: String) -> Int? {
        codes.firstIndex { $0.description == code }.map { $0 + 1 }
    }

    /// The same for a code's bytes, without allocating (OTLP's `envoy.response_flags`).
    package static func fieldNumber(of code: UnsafeBufferPointer<UInt8>) -> Int? {
        codes.firstIndex { $0.utf8CodeUnitCount == code.count
            && UnsafeBufferPointer(start: $0.utf8Start, count: $0.utf8CodeUnitCount).elementsEqual(code) }.map { $0 + 1 }
    }

    /// Where field number N lies in the C struct, and whether it is the message field (13, UAEX)
    /// rather than a bool: for code that builds a ResponseFlags (ALSTapOTLP).
    package static func layout(ofField number: Int) -> (offset: Int, isMessage: Bool)? {
        layouts[number]
    }

    private static let layouts: [Int: (offset: Int, isMessage: Bool)] = {
        let descriptor = envoy__data__accesslog__v3__response_flags__descriptor
        var layouts: [Int: (offset: Int, isMessage: Bool)] = [:]
        for i in 0..<Int(descriptor.n_fields) {
            let field = descriptor.fields[i]
            layouts[Int(field.id)] = (Int(field.offset), field.type == PROTOBUF_C_TYPE_MESSAGE)
        }
        return layouts
    }()

    /// The short code of field number N (2 → `UH`).
    public static func code(fieldNumber: Int) -> String? {
        (1...codes.count).contains(fieldNumber) ? codes[fieldNumber - 1].description : nil
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
                                number: number, code: Self.codes[number - 1]))
        }
        self.fields = fields.sorted { $0.offset < $1.offset }
    }

    /// The flags set, as bit N-1 for field N.
    func mask(_ flags: UnsafeRawPointer) -> UInt32 {
        var mask: UInt32 = 0
        for field in fields where isSet(field, flags) { mask |= 1 << (field.number - 1) }
        return mask
    }

    @inline(__always)
    private func isSet(_ field: Field, _ flags: UnsafeRawPointer) -> Bool {
        field.isMessage
            ? flags.load(fromByteOffset: field.offset, as: UnsafeRawPointer?.self) != nil
            : flags.load(fromByteOffset: field.offset, as: protobuf_c_boolean.self) != 0
    }

    /// Calls `body` with the code of every flag set, in field order.
    @inline(__always)
    func forEachSet(_ flags: UnsafeRawPointer, _ body: (StaticString) -> Void) {
        for field in fields where isSet(field, flags) { body(field.code) }
    }
}
