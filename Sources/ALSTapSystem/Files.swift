import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// Whole small files (tokens): read at once, with a bound.
public enum Files {
    /// The file's bytes; a file larger than `maxBytes` fails with EFBIG rather than being cut.
    public static func read(atPath path: String, maxBytes: Int) throws(SystemError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open \(path)", errno: CLinux_errno()) }
        defer { Syscalls.close(fd) }
        var bytes: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 1)
        defer { chunk.deallocate() }
        // Reading up to one byte past the bound tells a file of exactly `maxBytes` from a larger one.
        while bytes.count <= maxBytes {
            let wanted = UnsafeMutableRawBufferPointer(rebasing: chunk[..<min(chunk.count, maxBytes + 1 - bytes.count)])
            // A blocking descriptor never answers wouldBlock; both end the file.
            guard case .processed(let count) = try Syscalls.read(fd, into: wanted) else { return bytes }
            bytes += wanted[..<count]
        }
        throw SystemError("read \(path)", errno: EFBIG)
    }
}
