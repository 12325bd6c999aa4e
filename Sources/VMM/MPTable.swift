/// The Intel MultiProcessor Specification 1.4 table Linux reads when there is no ACPI: one
/// processor entry per vCPU (APIC ids 0...n-1, the first is the boot processor), an ISA bus, the
/// in-kernel IOAPIC (id n+1, 24 pins at 0xfec00000) with ISA IRQ i wired to pin i as KVM's
/// default routing does, and the local APICs' LINT0 = ExtINT and LINT1 = NMI. Placed in the
/// last KiB of base memory (0x9fc00), one of the places Linux scans for the "_MP_" pointer.
public enum MPTable {
    public static let ioapicAddress: UInt32 = 0xfec0_0000
    public static let lapicAddress: UInt32 = 0xfee0_0000
    public static let ioapicPins = 24
    public static let maxCPUs = 254   // 8-bit APIC ids, one taken by the IOAPIC
    static let apicVersion: UInt8 = 0x14
    static let ioapicVersion: UInt8 = 0x11
    static let cpuEnabled: UInt8 = 1, cpuBootProcessor: UInt8 = 2
    static let cpuSignature: UInt32 = 0x600           // family 6
    static let featureFPU: UInt32 = 1 << 0, featureAPIC: UInt32 = 1 << 9
    enum EntryType { static let processor: UInt8 = 0, bus: UInt8 = 1, ioapic: UInt8 = 2, intsrc: UInt8 = 3, lintsrc: UInt8 = 4 }
    enum IRQType { static let int: UInt8 = 0, nmi: UInt8 = 1, extINT: UInt8 = 3 }

    /// The floating pointer and configuration table for `cpus` vCPUs, to be placed at `address`.
    public static func build(cpus: Int, at address: UInt64 = X86Layout.mpTable) throws(KvmError) -> [UInt8] {
        guard (1...maxCPUs).contains(cpus) else { throw .invalidConfiguration("MP table for \(cpus) vCPUs (1...\(maxCPUs))") }
        let ioapicID = UInt8(cpus + 1)
        var b = LittleEndianBytes(capacity: 64 + 20 * cpus + 8 * (ioapicPins + 4))
        // Floating pointer structure (16 bytes), pointing at the table right after it.
        b.ascii("_MP_", width: 4)
        b.u32(UInt32(truncatingIfNeeded: address + 16))
        b.u8(1)          // length in 16-byte paragraphs
        b.u8(4)          // spec revision 1.4
        b.u8(0)          // checksum, patched below
        b.zeros(5)       // feature bytes: 0 = a configuration table is present
        b.patch(b.checksum(0..<16), at: 10)

        let table = b.count
        b.ascii("PCMP", width: 4)
        b.u16(0)         // base table length, patched
        b.u8(4)
        b.u8(0)          // checksum, patched
        b.ascii("KATA", width: 8)
        b.ascii("KATA-VMM", width: 12)
        b.u32(0); b.u16(0)
        b.u16(0)         // entry count, patched
        b.u32(lapicAddress)
        b.u16(0); b.u8(0); b.u8(0)   // extended table length and checksum, reserved
        var entries: UInt16 = 0
        for cpu in 0..<cpus {
            b.u8(EntryType.processor); b.u8(UInt8(cpu)); b.u8(apicVersion)
            b.u8(cpuEnabled | (cpu == 0 ? cpuBootProcessor : 0))
            b.u32(cpuSignature); b.u32(featureFPU | featureAPIC); b.zeros(8)
            entries += 1
        }
        b.u8(EntryType.bus); b.u8(0); b.ascii("ISA", width: 6); entries += 1
        b.u8(EntryType.ioapic); b.u8(ioapicID); b.u8(ioapicVersion); b.u8(1); b.u32(ioapicAddress); entries += 1
        for irq in 0..<ioapicPins {
            b.u8(EntryType.intsrc); b.u8(IRQType.int); b.u16(0)   // conforming polarity/trigger
            b.u8(0); b.u8(UInt8(irq)); b.u8(ioapicID); b.u8(UInt8(irq))
            entries += 1
        }
        b.u8(EntryType.lintsrc); b.u8(IRQType.extINT); b.u16(0); b.u8(0); b.u8(0); b.u8(0); b.u8(0); entries += 1      // to the BSP's LINT0
        b.u8(EntryType.lintsrc); b.u8(IRQType.nmi); b.u16(0); b.u8(0); b.u8(0); b.u8(0xff); b.u8(1); entries += 1   // every LINT1
        b.patch(UInt16(b.count - table), at: table + 4)
        b.patch(entries, at: table + 34)
        b.patch(b.checksum(table..<b.count), at: table + 7)
        return b.bytes
    }

    /// Writes the table for `cpus` vCPUs at `address` (bounds-checked).
    public static func write(cpus: Int, into memory: GuestMemory, at address: UInt64 = X86Layout.mpTable) throws(KvmError) {
        try memory.write(address, try build(cpus: cpus, at: address))
    }
}
