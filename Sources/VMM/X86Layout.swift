/// Guest-physical layout of the x86_64 machine (low memory follows Firecracker's conventions).
public enum X86Layout {
    /// GDT (up to 8 entries) and an empty IDT.
    public static let gdtAddress: UInt64 = 0x500
    public static let idtAddress: UInt64 = 0x540
    /// PVH: hvm_start_info, the module list after it, then the memory map (to 0x7000).
    public static let pvhStartInfo: UInt64 = 0x6000
    public static let pvhModuleList: UInt64 = 0x6040
    public static let pvhMemoryMap: UInt64 = 0x6100
    /// Linux boot_params ("zero page") for the 64-bit boot protocol.
    public static let zeroPage: UInt64 = 0x7000
    /// Initial stack for the 64-bit boot protocol (grows down from below the page tables).
    public static let bootStack: UInt64 = 0x8ff0
    /// Identity page tables: PML4, one PDPT, four page directories of 2 MiB pages (4 GiB).
    public static let pml4: UInt64 = 0x9000
    public static let pdpt: UInt64 = 0xa000
    public static let pageDirectories: UInt64 = 0xb000
    public static let identityMappedGiB = 4
    /// End of the boot structures; guest memory must be at least this large plus the program.
    public static let bootStructuresEnd: UInt64 = 0xf000
    /// Kernel command line (NUL-terminated) and its room.
    public static let commandLine: UInt64 = 0x2_0000
    public static let commandLineMax = 0x1_0000
    /// MP table in the last KiB of base memory, where Linux looks for it.
    public static let mpTable: UInt64 = 0x9_fc00
    public static let baseMemoryEnd: UInt64 = 0xa_0000
    /// Where flat binaries and the kernel's 64-bit entry are loaded.
    public static let highMemory: UInt64 = 0x10_0000
    /// The MMIO window below 4 GiB: no RAM there; virtio-mmio devices live at its start.
    public static let mmioGapStart: UInt64 = 0xd000_0000
    public static let mmioGapEnd: UInt64 = 0x1_0000_0000
    public static let virtioMMIOBase: UInt64 = 0xd000_0000
    public static let virtioMMIOStride: UInt64 = 0x1000
    /// RAM of `size` bytes: from 0 up to the MMIO gap, the rest from 4 GiB.
    public static func ramRegions(size: Int) -> [(base: UInt64, size: Int)] {
        let low = Int(mmioGapStart)
        if size <= low { return [(0, size)] }
        return [(0, low), (mmioGapEnd, size - low)]
    }
    /// First GSI handed to virtio-mmio devices (serial uses 4).
    public static let virtioFirstIRQ: UInt32 = 5
}

/// Fixed I/O ports of the machine.
public enum X86Ports {
    public static let serial0: UInt16 = 0x3f8
    public static let serial0IRQ: UInt32 = 4
    public static let i8042Data: UInt16 = 0x60
    public static let i8042Command: UInt16 = 0x64
    /// A byte written here ends the VM with that byte as its status (like QEMU isa-debug-exit).
    public static let debugExit: UInt16 = 0xf4
}
