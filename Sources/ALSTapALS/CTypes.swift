#if canImport(Glibc)
import Glibc
#endif
import CEnvoyProtos
import CProtobufArena

// Short names for the protoc-c structs the decoder and encoders read.
package typealias CStreamMessage = Envoy__Service__Accesslog__V3__StreamAccessLogsMessage
package typealias CIdentifier = Envoy__Service__Accesslog__V3__StreamAccessLogsMessage__Identifier
package typealias CHTTPEntry = Envoy__Data__Accesslog__V3__HTTPAccessLogEntry
typealias CTCPEntry = Envoy__Data__Accesslog__V3__TCPAccessLogEntry
typealias CCommon = Envoy__Data__Accesslog__V3__AccessLogCommon
typealias CAddress = Envoy__Config__Core__V3__Address
typealias CDuration = Google__Protobuf__Duration
typealias CStruct = Google__Protobuf__Struct
typealias CValue = Google__Protobuf__Value
typealias CCustomTag = Envoy__Data__Accesslog__V3__AccessLogCommon__CustomTagsEntry
typealias CTLS = Envoy__Data__Accesslog__V3__TLSProperties
typealias CCertificate = Envoy__Data__Accesslog__V3__TLSProperties__CertificateProperties

/// The length of a string protobuf-c unpacked into the decoder's arena, NUL bytes included
/// (protobuf-c's own strings are NUL-terminated and lose their length; the arena keeps it).
@inline(__always)
package func protobufStringLength(_ string: UnsafePointer<CChar>) -> Int {
    CProtobufArena_string_length(string)
}

/// A protobuf-c string that is set (proto3: empty means absent).
@inline(__always)
package func present(_ string: UnsafeMutablePointer<CChar>?) -> UnsafeMutablePointer<CChar>? {
    guard let string, string.pointee != 0 || protobufStringLength(string) > 0 else { return nil }
    return string
}

/// The bytes of a protobuf-c string, all of them (a NUL inside is data, not the end).
@inline(__always)
package func utf8Bytes(_ string: UnsafePointer<CChar>) -> UnsafeBufferPointer<UInt8> {
    UnsafeBufferPointer(start: UnsafeRawPointer(string).assumingMemoryBound(to: UInt8.self),
                        count: protobufStringLength(string))
}

/// A protobuf-c string as a Swift string (invalid UTF-8 repaired, NUL bytes kept).
func swiftString(_ string: UnsafePointer<CChar>) -> String {
    String(decoding: utf8Bytes(string), as: UTF8.self)
}

/// Looks up a string-keyed field of a google.protobuf.Struct.
func structField(_ object: UnsafePointer<CStruct>, _ key: String) -> UnsafeMutablePointer<CValue>? {
    for i in 0..<object.pointee.n_fields {
        guard let entry = object.pointee.fields[i], let entryKey = entry.pointee.key else { continue }
        if utf8Bytes(entryKey).elementsEqual(key.utf8) { return entry.pointee.value }
    }
    return nil
}

/// A Struct value's string, if it is a non-empty string.
func stringValue(_ value: UnsafeMutablePointer<CValue>?) -> String? {
    guard let value, value.pointee.kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE,
          let text = present(value.pointee.string_value) else { return nil }
    return swiftString(text)
}

/// Compares a protobuf-c string with a static one, exactly (length included), without allocating.
@inline(__always)
package func cStringEquals(_ string: UnsafePointer<CChar>, _ text: StaticString) -> Bool {
    protobufStringLength(string) == text.utf8CodeUnitCount && memcmp(string, text.utf8Start, text.utf8CodeUnitCount) == 0
}

/// Whether a protobuf-c string starts with a static one.
@inline(__always)
func cStringHasPrefix(_ string: UnsafePointer<CChar>, _ prefix: StaticString) -> Bool {
    protobufStringLength(string) >= prefix.utf8CodeUnitCount && memcmp(string, prefix.utf8Start, prefix.utf8CodeUnitCount) == 0
}
