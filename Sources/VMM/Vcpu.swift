#if canImport(Glibc)
import Glibc
#endif
import CKVM

/// A vCPU file descriptor and its shared kvm_run page. Used from one thread at a time.
public final class Vcpu: @unchecked Sendable {
    public let fd: Int32
    public let id: Int
    public unowned let vm: KvmVM
    let run: UnsafeMutablePointer<kvm_run>
    let runSize: Int

    init(fd: Int32, id: Int, mmapSize: Int, vm: KvmVM) throws(KvmError) {
        guard let p = mmap(nil, mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw .syscall("mmap vCPU \(id) run page", errno: errno)
        }
        self.fd = fd; self.id = id; self.vm = vm
        run = p.assumingMemoryBound(to: kvm_run.self)
        runSize = mmapSize
    }

    deinit {
        munmap(run, runSize)
        close(fd)
    }

    public func registers() throws(KvmError) -> kvm_regs {
        var r = kvm_regs()
        _ = try KvmError.check(ckvm_get_regs(fd, &r), "KVM_GET_REGS")
        return r
    }

    public func setRegisters(_ r: kvm_regs) throws(KvmError) {
        var r = r
        _ = try KvmError.check(ckvm_set_regs(fd, &r), "KVM_SET_REGS")
    }

    public func specialRegisters() throws(KvmError) -> kvm_sregs {
        var s = kvm_sregs()
        _ = try KvmError.check(ckvm_get_sregs(fd, &s), "KVM_GET_SREGS")
        return s
    }

    public func setSpecialRegisters(_ s: kvm_sregs) throws(KvmError) {
        var s = s
        _ = try KvmError.check(ckvm_set_sregs(fd, &s), "KVM_SET_SREGS")
    }

    public func setDefaultFPU() throws(KvmError) {
        _ = try KvmError.check(ckvm_set_fpu_defaults(fd), "KVM_SET_FPU")
    }

    /// KVM_GET_MP_STATE: whether the vCPU runs, waits for INIT or SIPI, or is halted (for reports
    /// about vCPUs other than the boot one).
    public func multiprocessingState() throws(KvmError) -> String {
        var state: UInt32 = 0
        _ = try KvmError.check(ckvm_get_mp_state(fd, &state), "KVM_GET_MP_STATE")
        switch Int32(state) {
        case KVM_MP_STATE_RUNNABLE: return "runnable"
        case KVM_MP_STATE_UNINITIALIZED: return "waiting for INIT"
        case KVM_MP_STATE_INIT_RECEIVED: return "waiting for SIPI"
        case KVM_MP_STATE_HALTED: return "halted"
        case KVM_MP_STATE_SIPI_RECEIVED: return "SIPI received"
        default: return "state \(state)"
        }
    }

    /// Guest-virtual to guest-physical through the current page tables; nil if unmapped.
    public func translate(_ linear: UInt64) -> UInt64? {
        var phys: UInt64 = 0
        var valid: Int32 = 0
        guard ckvm_translate(fd, linear, &phys, &valid) == 0, valid != 0 else { return nil }
        return phys
    }

    /// Makes the next (or current, with a kick signal) KVM_RUN return EINTR.
    public func requestImmediateExit(_ on: Bool) { ckvm_run_set_immediate_exit(run, on ? 1 : 0) }

    /// Runs the vCPU until the next exit to user space.
    public func runOnce() throws(KvmError) -> VcpuExit {
        if ckvm_run(fd) < 0 {
            let e = errno
            if e == EINTR || e == EAGAIN { return .interrupted }
            throw .syscall("KVM_RUN on vCPU \(id)", errno: e)
        }
        let reason = ckvm_run_exit_reason(run)
        let raw = UnsafeMutableRawPointer(run)
        switch Int32(reason) {
        case KVM_EXIT_IO:
            let io = ckvm_run_io(run)
            return .io(port: io.port, size: Int(io.size), count: Int(io.count),
                       isWrite: io.direction == UInt8(KVM_EXIT_IO_OUT), data: raw + Int(io.data_offset))
        case KVM_EXIT_MMIO:
            let m = ckvm_run_mmio(run)
            return .mmio(address: m.phys_addr, length: Int(min(m.len, 8)), isWrite: m.is_write != 0,
                         data: UnsafeMutableRawPointer(ckvm_run_mmio_data(run)))
        case KVM_EXIT_HLT: return .hlt
        case KVM_EXIT_SHUTDOWN: return .shutdown
        case KVM_EXIT_INTR: return .interrupted
        case KVM_EXIT_SYSTEM_EVENT:
            let s = ckvm_run_system_event(run)
            return .systemEvent(type: s.type, data: s.data0)
        case KVM_EXIT_INTERNAL_ERROR:
            let x = ckvm_run_internal(run)
            let n = Int(min(x.ndata, 16))
            let all = withUnsafeBytes(of: x.data) { Array($0.bindMemory(to: UInt64.self)) }
            return .internalError(suberror: x.suberror, data: Array(all.prefix(n)))
        case KVM_EXIT_FAIL_ENTRY:
            return .failEntry(reason: ckvm_run_fail_entry_reason(run))
        default:
            return .other(reason: reason)
        }
    }
}
