/// Why `MicroVM.run` returned.
public enum VMStop: Sendable, CustomStringConvertible {
    /// The guest wrote a status byte to the debug-exit port.
    case debugExit(status: UInt8)
    /// The guest asked for a reboot (i8042 reset, or a KVM reset system event): the VM ends.
    case reset
    /// Triple fault: the CPU shut down (e.g. a page fault with no IDT, or Linux reboot=t).
    case shutdown(VcpuSnapshot?)
    /// KVM_EXIT_SYSTEM_EVENT other than reset.
    case systemEvent(type: UInt32)
    case internalError(InternalErrorReport)
    case failEntry(reason: UInt64, VcpuSnapshot?)
    /// HLT with no in-kernel irqchip to wake the vCPU.
    case halted(VcpuSnapshot?)
    /// The time limit passed while the guest was still running.
    case timeout(VcpuSnapshot?)
    /// Another thread called `MicroVM.kicker.requestStop()`.
    case stopped(VcpuSnapshot?)
    case unhandledExit(reason: UInt32, VcpuSnapshot?)
    /// KVM_RUN (or the setup of a vCPU thread) failed on vCPU `vcpu`.
    case vcpuFailed(vcpu: Int, error: String)

    /// A clean end: the guest said it was done or asked to reboot.
    public var isClean: Bool {
        switch self {
        case .debugExit(0), .reset: return true
        default: return false
        }
    }

    public var description: String {
        func regs(_ s: VcpuSnapshot?) -> String { s.map { "\n" + $0.description } ?? "" }
        switch self {
        case .debugExit(let v): return "guest exited with status \(v)"
        case .reset: return "guest requested reset"
        case .shutdown(let s): return "guest shut down (triple fault)" + regs(s)
        case .systemEvent(let t): return "system event \(t)"
        case .internalError(let r): return r.description
        case .failEntry(let r, let s): return "VM entry failed, hardware reason 0x\(String(r, radix: 16))" + regs(s)
        case .halted(let s): return "guest halted" + regs(s)
        case .timeout(let s): return "guest still running at the time limit" + regs(s)
        case .stopped(let s): return "stopped by the host" + regs(s)
        case .unhandledExit(let r, let s): return "unhandled KVM exit reason \(r)" + regs(s)
        case .vcpuFailed(let v, let e): return "vCPU \(v) failed: \(e)"
        }
    }
}
