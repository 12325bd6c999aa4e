#if canImport(Glibc)
import Glibc
#endif

/// A plain (non-recursive) mutex. Each virtio-mmio transport has one: the vCPU thread takes it
/// for every register access, the I/O thread for every queue notification and host-side event,
/// so a device and its queues are only ever touched by one thread at a time.
public final class DeviceLock: @unchecked Sendable {
    let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
