/// The PVH boot ABI (Xen's `struct hvm_start_info`, version 1), which Linux built with CONFIG_PVH
/// accepts at the entry in its XEN_ELFNOTE_PHYS32_ENTRY note: the start info with the command
/// line, the initramfs as module 0, and the memory map (e820 types).
public enum PVHStartInfo {
    public static let magic: UInt32 = 0x336e_c578
    public static let startInfoSize = 56
    public static let moduleEntrySize = 32
    public static let memoryMapEntrySize = 24

    public struct Layout: Sendable {
        public var startInfo = X86Layout.pvhStartInfo
        public var moduleList = X86Layout.pvhModuleList
        public var memoryMap = X86Layout.pvhMemoryMap
        /// Room for the memory map (entries are 24 bytes).
        public var memoryMapCapacity = Int(X86Layout.zeroPage - X86Layout.pvhMemoryMap) / 24
        public init() {}
    }

    /// The start info, module list and memory map, each at its address in `layout`.
    public static func build(commandLine: UInt64, initrd: (address: UInt64, size: Int)?, e820: [E820Entry],
                             layout: Layout = Layout()) throws(KvmError) -> [(UInt64, [UInt8])] {
        guard e820.count <= layout.memoryMapCapacity else {
            throw .invalidConfiguration("\(e820.count) memory map entries (room for \(layout.memoryMapCapacity))")
        }
        var info = LittleEndianBytes(capacity: startInfoSize)
        info.u32(magic)
        info.u32(1)                                   // version
        info.u32(0)                                   // flags
        info.u32(initrd == nil ? 0 : 1)               // nr_modules
        info.u64(initrd == nil ? 0 : layout.moduleList)
        info.u64(commandLine)
        info.u64(0)                                   // rsdp_paddr: no ACPI, Linux uses the MP table
        info.u64(layout.memoryMap)
        info.u32(UInt32(e820.count))
        info.u32(0)
        var out: [(UInt64, [UInt8])] = [(layout.startInfo, info.bytes)]
        if let r = initrd {
            var m = LittleEndianBytes(capacity: moduleEntrySize)
            m.u64(r.address); m.u64(UInt64(r.size)); m.u64(0); m.u64(0)
            out.append((layout.moduleList, m.bytes))
        }
        var map = LittleEndianBytes(capacity: e820.count * memoryMapEntrySize)
        for e in e820 { map.u64(e.address); map.u64(e.size); map.u32(e.type); map.u32(0) }
        out.append((layout.memoryMap, map.bytes))
        return out
    }
}
