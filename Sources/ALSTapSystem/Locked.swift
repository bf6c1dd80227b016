#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex: the one lock of alstap.
///
/// pthread rather than `Synchronization.Mutex`: ThreadSanitizer intercepts pthread locks but not
/// the futex calls `Mutex` makes on Linux, so with `Mutex` every hand-off showed up as a race.
public final class PthreadMutex: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    public init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A value guarded by a `PthreadMutex`: the cross-thread hand-off primitive of alstap.
/// `@unchecked Sendable`: `value` is only touched inside `withLock`.
public final class Locked<Value>: @unchecked Sendable {
    private let mutex = PthreadMutex()
    private var value: Value

    public init(_ value: Value) {
        self.value = value
    }

    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try mutex.withLock { try body(&value) }
    }
}
