import CKVM

/// Why KVM_RUN returned. The data pointers of `.io` and `.mmio` point into the vCPU's run page
/// and are valid until the next `Vcpu.run()`.
public enum VcpuExit {
    /// Port I/O: `count` repetitions (string I/O) of `size` bytes at `data`.
    case io(port: UInt16, size: Int, count: Int, isWrite: Bool, data: UnsafeMutableRawPointer)
    /// MMIO to an address with no memory slot; for reads, fill `data[0..<length]`.
    case mmio(address: UInt64, length: Int, isWrite: Bool, data: UnsafeMutableRawPointer)
    /// HLT (only without an in-kernel irqchip).
    case hlt
    /// Triple fault or similar: the vCPU reset itself.
    case shutdown
    /// KVM_EXIT_SYSTEM_EVENT: shutdown, reset or crash requested through the platform.
    case systemEvent(type: UInt32, data: UInt64)
    /// KVM could not continue: suberror 1 is "emulation failure".
    case internalError(suberror: UInt32, data: [UInt64])
    /// VM entry failed with a hardware reason code.
    case failEntry(reason: UInt64)
    /// KVM_RUN returned EINTR (a kick signal or immediate_exit).
    case interrupted
    /// Any other exit reason (KVM_EXIT_* number).
    case other(reason: UInt32)
}

extension VcpuExit: CustomStringConvertible {
    public var description: String {
        switch self {
        case .io(let port, let size, let count, let w, _):
            return "io \(w ? "out" : "in") port 0x\(String(port, radix: 16)) size \(size) count \(count)"
        case .mmio(let a, let n, let w, _):
            return "mmio \(w ? "write" : "read") 0x\(String(a, radix: 16)) length \(n)"
        case .hlt: return "hlt"
        case .shutdown: return "shutdown"
        case .systemEvent(let t, let d): return "system event \(t) data 0x\(String(d, radix: 16))"
        case .internalError(let s, _): return "internal error suberror \(s)"
        case .failEntry(let r): return "entry failure reason 0x\(String(r, radix: 16))"
        case .interrupted: return "interrupted"
        case .other(let r): return "exit reason \(r)"
        }
    }
}
