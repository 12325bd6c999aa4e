#if canImport(Glibc)
import Glibc
#endif

/// A joinable pthread running a closure (the VMM's vCPU and I/O threads; no Foundation).
public final class NativeThread: @unchecked Sendable {
    final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
    let thread: pthread_t
    var joined = false

    /// Starts `body` on a new thread with `blockedSignals` blocked (all but the vCPU kick by
    /// default, so the host's signal handling stays on the threads that expect it).
    public init(name: String, _ body: @escaping () -> Void) throws(KvmError) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            var all = sigset_t()
            sigfillset(&all)
            pthread_sigmask(SIG_BLOCK, &all, nil)   // MicroVM.run unblocks its kick signal itself
            box.body()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw .syscall("pthread_create \(name)", errno: rc)
        }
        thread = t
    }

    /// Waits for the thread to end; later calls return at once.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }

    deinit { if !joined { pthread_detach(thread) } }
}
