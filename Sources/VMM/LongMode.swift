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
                                 rsi: UInt64 = 0, gdt: GDT.Layout = .tiny) throws(KvmError) {
        // Never hand the vCPU tables that would live outside guest memory.
        guard memory.contains(0, length: Int(X86Layout.bootStructuresEnd)) else {
            throw .invalidConfiguration("guest memory must cover 0-0x\(String(X86Layout.bootStructuresEnd, radix: 16)) for the boot page tables")
        }
        var s = try vcpu.specialRegisters()
        try installSegments(gdt, in: &s, memory: memory)
        s.cr3 = try PageTables.writeIdentityMap(into: memory)
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

    /// Writes `gdt` at 0x500 and an empty IDT at 0x520, and loads the layout's code, data and
    /// task segments into `s`.
    static func installSegments(_ gdt: GDT.Layout, in s: inout kvm_sregs, memory: GuestMemory) throws(KvmError) {
        guard X86Layout.gdtAddress + UInt64(gdt.table.count * 8) <= X86Layout.idtAddress else {
            throw .invalidConfiguration("GDT of \(gdt.table.count) entries overlaps the IDT")
        }
        for (i, e) in gdt.table.enumerated() { try memory.store(e, at: X86Layout.gdtAddress + UInt64(i) * 8) }
        try memory.store(UInt64(0), at: X86Layout.idtAddress)
        s.gdt.base = X86Layout.gdtAddress
        s.gdt.limit = UInt16(gdt.table.count * 8 - 1)
        s.idt.base = X86Layout.idtAddress
        s.idt.limit = 7
        let data = gdt.segment(gdt.data)
        s.cs = gdt.segment(gdt.code)
        s.ds = data; s.es = data; s.fs = data; s.gs = data; s.ss = data
        s.tr = gdt.segment(gdt.tss)
    }
}
