import CKVM

/// A vCPU's registers at a stop, printable for error reports.
public struct VcpuSnapshot: Sendable, CustomStringConvertible {
    public let regs: kvm_regs
    public let sregs: kvm_sregs

    public init(_ vcpu: Vcpu) throws(KvmError) {
        regs = try vcpu.registers()
        sregs = try vcpu.specialRegisters()
    }

    public var rip: UInt64 { regs.rip }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 16 - s.count)) + s
    }

    public var description: String {
        let r = regs, s = sregs
        let rows: [[(String, UInt64)]] = [
            [("rip", r.rip), ("rsp", r.rsp), ("rbp", r.rbp), ("rflags", r.rflags)],
            [("rax", r.rax), ("rbx", r.rbx), ("rcx", r.rcx), ("rdx", r.rdx)],
            [("rsi", r.rsi), ("rdi", r.rdi), ("r8", r.r8), ("r9", r.r9)],
            [("r10", r.r10), ("r11", r.r11), ("r12", r.r12), ("r13", r.r13)],
            [("r14", r.r14), ("r15", r.r15), ("cr2", s.cr2), ("cr3", s.cr3)],
            [("cr0", s.cr0), ("cr4", s.cr4), ("efer", s.efer), ("cs", UInt64(s.cs.selector))],
        ]
        return rows.map { row in row.map { "\($0.0)=\(VcpuSnapshot.hex($0.1))" }.joined(separator: " ") }
            .joined(separator: "\n")
    }
}

extension kvm_regs: @retroactive @unchecked Sendable {}
extension kvm_sregs: @retroactive @unchecked Sendable {}
