import CKVM

/// KVM_EXIT_INTERNAL_ERROR explained: which kind, where, the instruction bytes when known, and
/// on a PVM host why an ordinary guest instruction stopped the VM.
public struct InternalErrorReport: Sendable, CustomStringConvertible {
    public let suberror: UInt32
    public let data: [UInt64]
    public let snapshot: VcpuSnapshot?
    /// Bytes of the failing instruction (from KVM when it sends them, else read at RIP).
    public let instruction: [UInt8]
    public let pvm: Bool

    public var isEmulationFailure: Bool { suberror == UInt32(KVM_INTERNAL_ERROR_EMULATION) }

    public init(suberror: UInt32, data: [UInt64], vcpu: Vcpu, memory: GuestMemory, pvm: Bool = Kvm.isPVM) {
        self.suberror = suberror
        self.data = data
        self.pvm = pvm
        let snap = try? VcpuSnapshot(vcpu)
        snapshot = snap
        var insn: [UInt8] = []
        let flagBytes = UInt64(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)
        if suberror == UInt32(KVM_INTERNAL_ERROR_EMULATION), data.count >= 3, data[0] & flagBytes != 0, data[1] & 0xff > 0 {
            // struct emulation_failure: u64 flags; u8 insn_size; u8 insn_bytes[15].
            let bytes = data[1...2].flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> (8 * UInt64($0))) } }
            let n = min(Int(bytes[0]), 15)
            insn = Array(bytes[1...n])
        } else if let rip = snap?.rip {
            let phys = vcpu.translate(rip) ?? rip
            insn = (try? memory.read(phys, count: 15)) ?? []
        }
        instruction = insn
    }

    public var kind: String {
        switch Int32(suberror) {
        case KVM_INTERNAL_ERROR_EMULATION: return "emulation failure"
        case KVM_INTERNAL_ERROR_SIMUL_EX: return "exception while delivering an exception"
        case KVM_INTERNAL_ERROR_DELIVERY_EV: return "exit while delivering an event"
        case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: return "unexpected exit reason"
        default: return "suberror \(suberror)"
        }
    }

    public var explanation: String {
        guard isEmulationFailure else { return "KVM could not continue running the vCPU." }
        if pvm {
            return "This host's /dev/kvm is PVM (kvm_pvm): a guest without PVM support runs in KVM's "
                + "instruction emulator, which cannot emulate FPU/SSE/XSAVE, int3 and some other "
                + "instructions. Use a host with VT-x/AMD-V, or the QEMU backend (TCG) here."
        }
        return "KVM's instruction emulator could not handle the instruction at RIP (for example MMIO "
            + "through an instruction it does not support)."
    }

    public var description: String {
        var s = "KVM internal error: \(kind)"
        if !instruction.isEmpty {
            s += "; instruction bytes " + instruction.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: " ")
        }
        s += "\n" + explanation
        if let snapshot { s += "\n" + snapshot.description }
        return s
    }
}
