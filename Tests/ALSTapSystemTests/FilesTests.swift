import Glibc
import Testing

@testable import ALSTapSystem

@Suite struct FilesTests {
    /// A file under /tmp holding `bytes`, removed after `body`.
    func withFile<R>(_ bytes: [UInt8], _ body: (String) throws -> R) throws -> R {
        var template = Array("/tmp/alstap-files-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        try #require(fd >= 0)
        let path = String(cString: template)
        defer { unlink(path) }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        return try body(path)
    }

    @Test func readsTheWholeFileUpToTheBound() throws {
        let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0) }
        #expect(try withFile(bytes) { try Files.read(atPath: $0, maxBytes: 10_000) } == bytes)
        #expect(try withFile([]) { try Files.read(atPath: $0, maxBytes: 0) } == [])
    }

    @Test func largerThanTheBoundIsEFBIG() throws {
        let error = try withFile([UInt8](repeating: 7, count: 10_001)) { path in
            #expect(throws: SystemError.self) { try Files.read(atPath: path, maxBytes: 10_000) }
        }
        #expect(error?.errno == EFBIG)
    }

    @Test func missingFileAndDirectoryAreErrors() {
        let missing = #expect(throws: SystemError.self) { try Files.read(atPath: "/nonexistent/alstap", maxBytes: 10) }
        #expect(missing?.errno == ENOENT)
        let directory = #expect(throws: SystemError.self) { try Files.read(atPath: "/tmp", maxBytes: 10) }
        #expect(directory?.errno == EISDIR)
    }
}
