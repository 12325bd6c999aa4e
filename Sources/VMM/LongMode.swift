import CKVM

/// Puts a vCPU directly in 64-bit mode: flat GDT, identity page tables, paging and long mode on,
/// interrupts off, at `entry` with `stack`. `rsi` carries the boot_params address for Linux.
public enum LongMode {
    static let cr0PE: UInt64 = 1 << 0
    static let cr0NE: UInt64 = 1 << 5
    static let cr0PG: UInt64 = 1 << 31
    static let cr4PAE: UInt64 = 1 << 5
    static let eferLME: UInt64 = 1 << 8
    static let eferLMA: UInt64 = 1 << 10

    public static func configure(_ vcpu: Vcpu, memory: GuestMemory, entry: UInt64, stack: UInt64,
                                 rsi: UInt64 = 0) throws(KvmError) {
        // Never hand the vCPU tables that would live outside guest memory.
        guard memory.contains(0, length: Int(X86Layout.bootStructuresEnd)) else {
            throw .invalidConfiguration("guest memory must cover 0-0x\(String(X86Layout.bootStructuresEnd, radix: 16)) for the boot page tables")
        }
        for (i, e) in GDT.table.enumerated() { try memory.store(e, at: X86Layout.gdtAddress + UInt64(i) * 8) }
        try memory.store(UInt64(0), at: X86Layout.idtAddress)
        let cr3 = try PageTables.writeIdentityMap(into: memory)

        var s = try vcpu.specialRegisters()
        let code = GDT.segment(GDT.table[1], index: 1)
        let data = GDT.segment(GDT.table[2], index: 2)
        s.gdt.base = X86Layout.gdtAddress
        s.gdt.limit = UInt16(GDT.table.count * 8 - 1)
        s.idt.base = X86Layout.idtAddress
        s.idt.limit = 7
        s.cs = code
        s.ds = data; s.es = data; s.fs = data; s.gs = data; s.ss = data
        s.tr = GDT.segment(GDT.table[3], index: 3)
        s.cr3 = cr3
        s.cr4 |= cr4PAE
        s.cr0 |= cr0PE | cr0PG
        s.efer |= eferLME | eferLMA
        try vcpu.setSpecialRegisters(s)

        var r = kvm_regs()
        r.rflags = 0x2
        r.rip = entry
        r.rsp = stack
        r.rbp = stack
        r.rsi = rsi
        try vcpu.setRegisters(r)
        try vcpu.setDefaultFPU()
    }
}
