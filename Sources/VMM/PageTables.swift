/// Identity-mapped page tables with 2 MiB pages, written into guest memory.
public enum PageTables {
    static let present: UInt64 = 1 << 0
    static let writable: UInt64 = 1 << 1
    static let pageSize2M: UInt64 = 1 << 7

    /// Maps guest-virtual = guest-physical for the first `gib` GiB (1...512), MMIO gap included.
    /// Returns the PML4 address for CR3.
    @discardableResult
    public static func writeIdentityMap(into memory: GuestMemory, gib: Int = X86Layout.identityMappedGiB,
                                        pml4: UInt64 = X86Layout.pml4, pdpt: UInt64 = X86Layout.pdpt,
                                        directories: UInt64 = X86Layout.pageDirectories) throws(KvmError) -> UInt64 {
        guard (1...512).contains(gib) else { throw .invalidConfiguration("identity map of \(gib) GiB") }
        try memory.fill(pml4, count: 4096)
        try memory.fill(pdpt, count: 4096)
        try memory.store(pdpt | present | writable, at: pml4)
        for g in 0..<gib {
            let pd = directories + UInt64(g) * 4096
            try memory.store(pd | present | writable, at: pdpt + UInt64(g) * 8)
            for i in 0..<512 {
                let phys = (UInt64(g) << 30) | (UInt64(i) << 21)
                try memory.store(phys | present | writable | pageSize2M, at: pd + UInt64(i) * 8)
            }
        }
        return pml4
    }
}
