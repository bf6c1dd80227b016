import Glibc

/// A file under /tmp holding `text`, removed after `body`.
func withTempFile<R>(_ text: String, _ body: (String) throws -> R) throws -> R {
    var template = Array("/tmp/alstap-test-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    guard fd >= 0 else { throw TempFileError() }
    let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    defer { unlink(path) }
    _ = Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    return try body(path)
}

struct TempFileError: Error {}
