#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value guarded by a POSIX mutex (`pthread_mutex_t`): the lock every module of blend uses
/// in place of `Synchronization.Mutex`.
///
/// Why not `Mutex`: on Linux its slow path waits on a raw futex that ThreadSanitizer cannot
/// see, so every contended `Mutex.withLock` is reported as a data race (FUZZING.md,
/// "Sanitizers"), which makes `scripts/sanitize.sh thread` useless. ThreadSanitizer intercepts
/// `pthread_mutex_lock`/`unlock` and sees the happens-before edge they make. Uncontended, a
/// glibc mutex costs the same as `Mutex` (one atomic exchange each way, about 20 ns a pair).
///
/// The API has `Mutex`'s shape: `let state = PThreadMutex(State())`, then
/// `state.withLock { (state: inout State) in ... }`. Unlike `Mutex` it is a class: copies of a
/// reference share the one lock, and the `pthread_mutex_t` lives in its own heap allocation,
/// so its address never changes (POSIX forbids moving an initialised mutex).
///
/// **Not reentrant**: calling `withLock` again on the same instance from inside its `body`
/// deadlocks (a default, non-recursive mutex), as with `Mutex`. Keep bodies short and never
/// call out to unknown code (callbacks, continuations) while holding the lock.
public final class PThreadMutex<Value>: @unchecked Sendable {
    // Sound as `Sendable` for any `Value`, for the reason `Mutex` is: the value enters through a
    // `sending` parameter (the caller gives up every other reference to it), is reached only
    // inside `withLock`, which holds the mutex for the whole access, and leaves only as a
    // `sending` result, so no two threads ever touch it at once and no non-Sendable state
    // escapes into another isolation region.
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let value: UnsafeMutablePointer<Value>

    /// A lock around `initialValue`.
    public init(_ initialValue: consuming sending Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        // A default mutex: pthread_mutex_init fails only for lack of memory or bad attributes.
        let status = pthread_mutex_init(mutex, nil)
        precondition(status == 0, "pthread_mutex_init failed (\(status))")
        value = .allocate(capacity: 1)
        value.initialize(to: initialValue)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with exclusive access to the value, holding the mutex until `body` returns
    /// or throws; returns what `body` returns and rethrows what it throws. Not reentrant.
    @inlinable
    public func withLock<Result, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}
