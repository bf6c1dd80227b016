#if canImport(Glibc)
import Glibc
#endif

/// The terminal under `alstap top`'s full-screen view, and the one place that changes its state.
///
/// `enter()` saves the settings, turns off line buffering and echo (keys arrive one by one;
/// Ctrl-C still raises SIGINT), switches to the alternate screen and hides the cursor. `leave()`
/// undoes it all, and so do SIGINT (exit 0), SIGTERM and SIGHUP (exit 128 + the signal) before
/// they end the process, whatever it was doing (a blocking connect, a read). SIGWINCH writes a
/// byte into `resizes`, a pipe the view polls, and the view asks `size()` again.
enum Terminal {
    /// Both ends are a terminal: keys can be read and a screen drawn.
    static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 }

    /// Columns and rows of the terminal on stdout (nil: not a terminal, or it does not say).
    static func size() -> (width: Int, height: Int)? {
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 else { return nil }
        return (Int(size.ws_col), Int(size.ws_row))
    }

    /// The read end of the resize pipe: readable after a SIGWINCH (drain it with `drainResizes`).
    static var resizes: Int32 { resizePipe.read }

    static func enter() {
        guard tcgetattr(STDIN_FILENO, saved) == 0 else { return }
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            // Non-blocking: the handler's write must never wait, nor must the drain's reads.
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
            resizePipe = (fds[0], fds[1])
        }
        let raw = UnsafeMutablePointer<termios>.allocate(capacity: 1)
        defer { raw.deallocate() }
        raw.initialize(to: saved.pointee)
        raw.pointee.c_lflag &= ~tcflag_t(ICANON | ECHO)
        // c_cc is a C array, a tuple in Swift: indexed through its bytes (cc_t is one byte).
        withUnsafeMutableBytes(of: &raw.pointee.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        isEntered = true
        signal(SIGINT, leaveAndExit)
        signal(SIGTERM, leaveAndExit)
        signal(SIGHUP, leaveAndExit)
        signal(SIGWINCH, noteResize)
        _ = tcsetattr(STDIN_FILENO, TCSANOW, raw)
        write("\u{1B}[?1049h\u{1B}[?25l\u{1B}[H\u{1B}[2J")
    }

    static func leave() {
        guard isEntered else { return }
        restore()
        isEntered = false
    }

    static func drainResizes() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while Glibc.read(resizePipe.read, &bytes, bytes.count) > 0 {}
    }

    /// All of `text` to stdout, unbuffered (a frame is one write).
    static func write(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }
}

// What the signal handlers read. A C signal handler cannot capture context, so the state it
// needs is global: set by `enter()` before the handlers are installed, then only read (and
// `isEntered` cleared by `leave()`). Single-threaded otherwise.
/// The settings to restore. Allocated, not a `termios` variable: Swift lays the imported struct
/// out in 57 bytes, without the C struct's tail padding, and tcgetattr/tcsetattr copy all 60
/// (AddressSanitizer caught the overflow of a global). An allocation has the stride, 60.
nonisolated(unsafe) private let saved: UnsafeMutablePointer<termios> = {
    let pointer = UnsafeMutablePointer<termios>.allocate(capacity: 1)
    pointer.initialize(to: termios())
    return pointer
}()
nonisolated(unsafe) private var isEntered = false
nonisolated(unsafe) private var resizePipe: (read: Int32, write: Int32) = (-1, -1)

/// Async-signal-safe (tcsetattr, write): the settings back, the main screen back, the cursor
/// shown. CAN (0x18) first ends an escape sequence that a signal may have cut in half.
private func restore() {
    _ = tcsetattr(STDIN_FILENO, TCSANOW, saved)
    let leave: StaticString = "\u{18}\u{1B}[0m\u{1B}[?25h\u{1B}[?1049l"
    _ = write(STDOUT_FILENO, leave.utf8Start, leave.utf8CodeUnitCount)
}

private func leaveAndExit(_ signal: Int32) {
    if isEntered { restore() }
    _exit(signal == SIGINT ? 0 : 128 + signal)
}

private func noteResize(_: Int32) {
    var byte: UInt8 = 1
    _ = write(resizePipe.write, &byte, 1)
}
