#if canImport(Glibc)
import Glibc
#endif

/// Runs a fuzz target once per file: how a crash input found by libFuzzer is replayed in a
/// normal build (and how the regression inputs in Tests/Fuzz are checked by the test command).
public func replayFiles(_ paths: ArraySlice<String>, _ target: (UnsafeRawBufferPointer) -> Void) {
    for path in paths {
        guard let file = fopen(path, "rb") else {
            print("cannot open \(path)")
            exit(2)
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        fclose(file)
        bytes.withUnsafeBytes { target($0) }
    }
    print("replayed \(paths.count) inputs")
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Hands control to libFuzzer. SwiftPM links an executable's entry point as `<Target>_main`, so
/// each target exports that name (with `@_cdecl`) and calls this with its test function.
public func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                      _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}
#endif
