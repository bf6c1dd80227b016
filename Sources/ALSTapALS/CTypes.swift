#if canImport(Glibc)
import Glibc
#endif
import CEnvoyProtos

// Short names for the protoc-c structs the decoder and encoders read.
typealias CStreamMessage = Envoy__Service__Accesslog__V3__StreamAccessLogsMessage
typealias CIdentifier = Envoy__Service__Accesslog__V3__StreamAccessLogsMessage__Identifier
typealias CHTTPEntry = Envoy__Data__Accesslog__V3__HTTPAccessLogEntry
typealias CTCPEntry = Envoy__Data__Accesslog__V3__TCPAccessLogEntry
typealias CCommon = Envoy__Data__Accesslog__V3__AccessLogCommon
typealias CAddress = Envoy__Config__Core__V3__Address
typealias CDuration = Google__Protobuf__Duration
typealias CStruct = Google__Protobuf__Struct
typealias CValue = Google__Protobuf__Value
typealias CTLS = Envoy__Data__Accesslog__V3__TLSProperties
typealias CCertificate = Envoy__Data__Accesslog__V3__TLSProperties__CertificateProperties

/// A NUL-terminated protobuf-c string that is set (proto3: empty means absent).
@inline(__always)
func present(_ string: UnsafeMutablePointer<CChar>?) -> UnsafeMutablePointer<CChar>? {
    guard let string, string.pointee != 0 else { return nil }
    return string
}

/// The bytes of a protobuf-c string, without the NUL.
@inline(__always)
func utf8Bytes(_ string: UnsafePointer<CChar>) -> UnsafeBufferPointer<UInt8> {
    UnsafeBufferPointer(start: UnsafeRawPointer(string).assumingMemoryBound(to: UInt8.self), count: strlen(string))
}

/// Looks up a string-keyed field of a google.protobuf.Struct.
func structField(_ object: UnsafePointer<CStruct>, _ key: String) -> UnsafeMutablePointer<CValue>? {
    for i in 0..<object.pointee.n_fields {
        guard let entry = object.pointee.fields[i], let entryKey = entry.pointee.key else { continue }
        if String(cString: entryKey) == key { return entry.pointee.value }
    }
    return nil
}

/// A Struct value's string, if it is a non-empty string.
func stringValue(_ value: UnsafeMutablePointer<CValue>?) -> String? {
    guard let value, value.pointee.kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE,
          let text = present(value.pointee.string_value) else { return nil }
    return String(cString: text)
}

/// Compares a NUL-terminated string with a static one, without allocating.
@inline(__always)
func cStringEquals(_ string: UnsafePointer<CChar>, _ text: StaticString) -> Bool {
    strcmp(string, UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)) == 0
}
