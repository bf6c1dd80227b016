import ALSTapSystem
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// A bearer token file (`serve --tap-token-file`, `--als-token-file`, `tap --token-file`).
enum TokenFile {
    /// A token is a line; a larger file is a mistake (a wrong path), not a token.
    static let maxBytes = 64 * 1024

    /// The file's text without surrounding whitespace; `flag` names the file in errors.
    static func read(_ path: String, flag: String) throws(ValidationError) -> String {
        let bytes: [UInt8]
        do {
            bytes = try Files.read(atPath: path, maxBytes: maxBytes)
        } catch where error.errno == EFBIG {
            throw ValidationError("\(flag) \(path) is larger than \(maxBytes) bytes")
        } catch {
            throw ValidationError("cannot read \(flag) \(path)")
        }
        let token = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: " \t\r\n")
        guard !token.isEmpty else { throw ValidationError("\(flag) \(path) is empty") }
        // It goes into Authorization headers: a control byte inside would end the header there.
        guard token.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) else {
            throw ValidationError("\(flag) \(path) holds control characters (one token on one line)")
        }
        return token
    }
}
