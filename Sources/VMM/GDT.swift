import CKVM

/// Flat x86 segment descriptors for direct 64-bit entry and their KVM register form.
public enum GDT {
    /// `flags`: access byte in bits 0-7 and G/DB/L/AVL in bits 12-15 (e.g. 0xa09b = 64-bit code).
    public static func entry(flags: UInt16, base: UInt32, limit: UInt32) -> UInt64 {
        let b = UInt64(base), l = UInt64(limit), f = UInt64(flags)
        return ((b & 0xff00_0000) << 32) | ((b & 0x00ff_ffff) << 16) | (l & 0xffff)
            | ((l & 0xf_0000) << 32) | ((f & 0xf0ff) << 40)
    }

    public static let code64: UInt16 = 0xa09b
    public static let data: UInt16 = 0xc093
    public static let tss: UInt16 = 0x808b

    /// null, code (selector 0x08), data (0x10), TSS (0x18).
    public static let table: [UInt64] = [
        0,
        entry(flags: code64, base: 0, limit: 0xfffff),
        entry(flags: data, base: 0, limit: 0xfffff),
        entry(flags: tss, base: 0, limit: 0xfffff),
    ]

    /// 32-bit code (PVH entry), and a 32-bit TSS with a 0x67 limit as the PVH ABI asks.
    public static let code32: UInt16 = 0xc09b
    public static let tss32: UInt16 = 0x008b

    /// Linux's boot GDT: null, null, __BOOT_CS (0x10, 64-bit code), __BOOT_DS (0x18), TSS (0x20),
    /// and 32-bit code (0x28) for the PVH entry. boot.rst's 64-bit protocol names 0x10 and 0x18.
    public static let linuxTable: [UInt64] = [
        0,
        0,
        entry(flags: code64, base: 0, limit: 0xfffff),
        entry(flags: data, base: 0, limit: 0xfffff),
        entry(flags: tss32, base: 0, limit: 0x67),
        entry(flags: code32, base: 0, limit: 0xfffff),
    ]

    /// Which table to install and which of its entries the vCPU's segments use.
    public struct Layout: Sendable {
        public let table: [UInt64]
        public let code: Int
        public let data: Int
        public let tss: Int

        /// The tiny guests' table: code 0x08, data 0x10, TSS 0x18.
        public static let tiny = Layout(table: GDT.table, code: 1, data: 2, tss: 3)
        /// Linux 64-bit boot protocol: __BOOT_CS 0x10, __BOOT_DS 0x18.
        public static let linux64 = Layout(table: GDT.linuxTable, code: 2, data: 3, tss: 4)
        /// PVH: 32-bit flat code 0x28, data 0x18, 32-bit TSS.
        public static let pvh = Layout(table: GDT.linuxTable, code: 5, data: 3, tss: 4)

        func segment(_ i: Int) -> kvm_segment { GDT.segment(table[i], index: i) }
    }

    /// The kvm_segment a CPU would load from descriptor `e` at table index `index`.
    public static func segment(_ e: UInt64, index: Int) -> kvm_segment {
        var s = kvm_segment()
        s.base = ((e >> 16) & 0x00ff_ffff) | ((e >> 32) & 0xff00_0000)
        var limit = UInt32((e & 0xffff) | ((e >> 32) & 0xf_0000))
        let g = UInt8((e >> 55) & 1)
        if g == 1 { limit = (limit << 12) | 0xfff }
        s.limit = limit
        s.selector = UInt16(index * 8)
        s.type = UInt8((e >> 40) & 0xf)
        s.s = UInt8((e >> 44) & 1)
        s.dpl = UInt8((e >> 45) & 3)
        s.present = UInt8((e >> 47) & 1)
        s.avl = UInt8((e >> 52) & 1)
        s.l = UInt8((e >> 53) & 1)
        s.db = UInt8((e >> 54) & 1)
        s.g = g
        s.unusable = s.present == 0 ? 1 : 0
        return s
    }
}
