#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Synchronization

/// Stops a running vCPU from another thread: sets a flag and the run page's immediate_exit
/// (so a KVM_RUN about to start returns at once), then signals the vCPU thread (so a KVM_RUN in
/// progress returns EINTR). The standard pattern; safe to call any number of times.
public final class VcpuKicker: @unchecked Sendable {
    let requested = Atomic<Bool>(false)
    /// The pthread_t of the thread inside `MicroVM.run`, 0 when none.
    let thread = Atomic<UInt>(0)
    let vcpu: Vcpu

    init(vcpu: Vcpu) { self.vcpu = vcpu }

    public var stopRequested: Bool { requested.load(ordering: .acquiring) }

    public func requestStop() {
        requested.store(true, ordering: .releasing)
        vcpu.requestImmediateExit(true)
        let t = thread.load(ordering: .acquiring)
        if t != 0 { pthread_kill(pthread_t(t), ckvm_kick_signal()) }
    }

    /// A stop is final: a later `run` returns `.stopped` at once.
    func enter() {
        thread.store(UInt(pthread_self()), ordering: .releasing)
    }

    func leave() {
        thread.store(0, ordering: .releasing)
        vcpu.requestImmediateExit(false)
    }
}
