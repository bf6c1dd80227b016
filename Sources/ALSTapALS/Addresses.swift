#if canImport(Glibc)
import Glibc
#endif
import CEnvoyProtos

extension ByteWriter {
    /// Writes an Envoy Address as `ip:port` (IPv6 in brackets), a pipe path, or an internal
    /// listener name; writes nothing and returns false when the address is empty. Without
    /// `withPort`, an IP address without its port.
    @discardableResult
    func appendAddress(_ address: UnsafePointer<CAddress>?, mode: EscapeMode, withPort: Bool = true) -> Bool {
        guard let address else { return false }
        switch address.pointee.address_case {
        case ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS:
            guard let socket = address.pointee.socket_address, let host = present(socket.pointee.address) else {
                return false
            }
            let bracketed = strchr(host, Int32(UInt8(ascii: ":"))) != nil
            if !withPort {
                appendEscaped(host, mode: mode)
                return true
            }
            if bracketed { append(UInt8(ascii: "[")) }
            appendEscaped(host, mode: mode)
            if bracketed { append(UInt8(ascii: "]")) }
            if socket.pointee.port_specifier_case == ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE {
                append(UInt8(ascii: ":"))
                appendDecimal(UInt64(socket.pointee.port_value))
            } else if let named = present(socket.pointee.named_port) {
                append(UInt8(ascii: ":"))
                appendEscaped(named, mode: mode)
            }
            return true
        case ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE:
            guard let pipe = address.pointee.pipe, let path = present(pipe.pointee.path) else { return false }
            appendEscaped(path, mode: mode)
            return true
        case ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_ENVOY_INTERNAL_ADDRESS:
            guard let internalAddress = address.pointee.envoy_internal_address,
                  let name = present(internalAddress.pointee.server_listener_name) else { return false }
            append("envoy://")
            appendEscaped(name, mode: mode)
            return true
        default:
            return false
        }
    }
}
