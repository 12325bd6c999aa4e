@testable import VMM

/// Synthetic kernel images for the loader tests (no real kernel needed).
enum TestImages {
    /// An ELF64 x86_64 executable with one PT_LOAD of `code` at `paddr` (memsz `memsz`) and, if
    /// `pvhEntry` is given, a PT_NOTE carrying Xen's PHYS32_ENTRY.
    static func elf(code: [UInt8], paddr: UInt64 = 0x100_0000, memsz: UInt64? = nil, entry: UInt64 = 0x100_0000,
                    pvhEntry: UInt32? = nil, machine: UInt16 = 62) -> [UInt8] {
        var note = LittleEndianBytes()
        if let pvh = pvhEntry {
            // An unrelated note first, so the walker has to skip one.
            note.u32(6); note.u32(4); note.u32(1); note.raw(Array("Linux\0".utf8)); note.align(4); note.u32(0)
            note.u32(4); note.u32(8); note.u32(18); note.raw(Array("Xen\0".utf8)); note.u64(UInt64(pvh))
        }
        let phnum = pvhEntry == nil ? 1 : 2
        let codeOffset = 64 + 56 * phnum
        let noteOffset = codeOffset + code.count
        var b = LittleEndianBytes()
        b.raw([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]); b.zeros(8)
        b.u16(2); b.u16(machine); b.u32(1)
        b.u64(entry); b.u64(64); b.u64(0)        // e_entry, e_phoff, e_shoff
        b.u32(0); b.u16(64); b.u16(56); b.u16(UInt16(phnum)); b.u16(64); b.u16(0); b.u16(0)
        // PT_LOAD
        b.u32(1); b.u32(5); b.u64(UInt64(codeOffset)); b.u64(0xffff_ffff_8000_0000 + paddr); b.u64(paddr)
        b.u64(UInt64(code.count)); b.u64(memsz ?? UInt64(code.count)); b.u64(0x1000)
        if pvhEntry != nil {
            b.u32(4); b.u32(4); b.u64(UInt64(noteOffset)); b.u64(0); b.u64(0)
            b.u64(UInt64(note.count)); b.u64(UInt64(note.count)); b.u64(4)
        }
        b.raw(code)
        b.raw(note.bytes)
        return b.bytes
    }

    /// A bzImage-shaped file: `setupSects` setup sectors with a 2.15 header, then `payload`.
    static func bzImage(payload: [UInt8], setupSects: UInt8 = 4, version: UInt16 = 0x020f, xloadflags: UInt16 = 1,
                        relocatable: Bool = false, prefAddress: UInt64 = 0x100_0000, initSize: UInt32 = 0x20_0000) -> [UInt8] {
        var b = LittleEndianBytes()
        b.zeros((Int(setupSects) + 1) * 512)
        typealias O = BzImage.Offset
        b.patch(setupSects, at: O.setupSects)
        b.patch(BzImage.bootFlagMagic, at: O.bootFlag)
        b.patch(UInt8(0xeb), at: 0x200); b.patch(UInt8(0x6a), at: 0x201)   // jmp over the header to 0x26c
        b.patch(BzImage.headerMagic, at: O.header)
        b.patch(version, at: O.version)
        b.patch(UInt8(1), at: O.loadFlags)
        b.patch(UInt32(0x10_0000), at: O.code32Start)
        b.patch(UInt32(0x7fff_ffff), at: O.initrdAddrMax)
        b.patch(UInt32(0x20_0000), at: O.kernelAlignment)
        b.patch(UInt8(relocatable ? 1 : 0), at: O.relocatableKernel)
        b.patch(xloadflags, at: O.xloadflags)
        b.patch(UInt32(2047), at: O.cmdlineSize)
        b.patch(prefAddress, at: O.prefAddress)
        b.patch(initSize, at: O.initSize)
        b.raw(payload)
        return b.bytes
    }
}
