import CKVM

/// How the VMM enters a Linux kernel.
public enum BootProtocol: String, Sendable {
    /// PVH: 32-bit protected mode, paging off, at the vmlinux's XEN_ELFNOTE_PHYS32_ENTRY, with
    /// ebx = hvm_start_info. No page tables needed; the kernel builds its own.
    case pvh
    /// Linux 64-bit boot protocol: long mode with identity page tables, __BOOT_CS/__BOOT_DS,
    /// rsi = boot_params, at startup_64 (vmlinux) or load address + 0x200 (bzImage).
    case linux64
}

/// The boot vCPU's register state for each protocol.
public enum LinuxEntry {
    static let cr0PE: UInt64 = 1 << 0, cr0ET: UInt64 = 1 << 4

    /// PVH ABI: CR0 = PE (ET is fixed), CR4 = 0, EFER = 0, flat 32-bit CS/DS/ES/SS, a 32-bit
    /// busy TSS, EFLAGS with IF/TF/VM clear, ebx = start info.
    public static func pvh(_ vcpu: Vcpu, memory: GuestMemory, entry: UInt32, startInfo: UInt64) throws(KvmError) {
        var s = try vcpu.specialRegisters()
        try LongMode.installSegments(.pvh, in: &s, memory: memory)
        s.cr0 = cr0PE | cr0ET
        s.cr3 = 0
        s.cr4 = 0
        s.efer = 0
        try vcpu.setSpecialRegisters(s)
        var r = kvm_regs()
        r.rflags = 0x2
        r.rip = UInt64(entry)
        r.rbx = startInfo
        try vcpu.setRegisters(r)
        try vcpu.setDefaultFPU()
    }

    /// 64-bit boot protocol (boot.rst): paging on with the loader's identity map, CS = 0x10,
    /// DS/ES/SS = 0x18, interrupts off, rsi = boot_params.
    public static func linux64(_ vcpu: Vcpu, memory: GuestMemory, entry: UInt64, bootParams: UInt64) throws(KvmError) {
        try LongMode.configure(vcpu, memory: memory, entry: entry, stack: X86Layout.bootStack,
                               rsi: bootParams, gdt: .linux64)
    }
}
