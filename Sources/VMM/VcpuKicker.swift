#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Synchronization

/// Stops running vCPUs from another thread: sets a flag and each run page's immediate_exit (so a
/// KVM_RUN about to start returns at once), then signals every vCPU thread (so a KVM_RUN in
/// progress returns EINTR). The standard pattern; safe to call any number of times.
/// `requestStop()` is final (the VM's owner stopping it); `kickAll()` only interrupts the vCPUs
/// so that the run loops look at the VM's shared stop state (one vCPU ending the VM).
public final class VcpuKicker: @unchecked Sendable {
    let requested = Atomic<Bool>(false)
    let vcpus: [Vcpu]
    let lock = DeviceLock()
    /// The pthread_t of the thread inside each vCPU's run loop, 0 when none.
    var threads: [UInt]

    init(vcpus: [Vcpu]) {
        self.vcpus = vcpus
        threads = Array(repeating: 0, count: vcpus.count)
    }

    public var stopRequested: Bool { requested.load(ordering: .acquiring) }

    /// A stop is final: a later `run` returns `.stopped` at once.
    public func requestStop() {
        requested.store(true, ordering: .releasing)
        kickAll()
    }

    /// Makes every vCPU's KVM_RUN return (now, or at once when it next starts) without a stop
    /// request; the next `leave` of each clears it.
    func kickAll() {
        for v in vcpus { v.requestImmediateExit(true) }
        let running = lock.withLock { threads }
        for t in running where t != 0 { pthread_kill(pthread_t(t), ckvm_kick_signal()) }
    }

    /// Registers the calling thread as vCPU `index`'s. Clears a kick left over from an earlier
    /// run: callers check `stopRequested` and their run's end flag after this, and kicks are only
    /// sent after those flags are set, so none is lost.
    func enter(_ index: Int) {
        vcpus[index].requestImmediateExit(false)
        lock.withLock { threads[index] = UInt(pthread_self()) }
    }

    func leave(_ index: Int) {
        lock.withLock { threads[index] = 0 }
        vcpus[index].requestImmediateExit(false)
    }
}
