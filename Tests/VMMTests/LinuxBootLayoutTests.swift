#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import VMM
import CKVM

/// Boot structures and image parsing, without KVM.
final class LinuxBootLayoutTests: XCTestCase {
    func testElfKernelSegmentsAndPVHNote() throws {
        let code: [UInt8] = [0xf4, 0x90, 0x90, 0x90]
        let f = try MappedFile(name: "vmlinux", contents: TestImages.elf(code: code, memsz: 0x2000, entry: 0x100_0010, pvhEntry: 0x100_0000))
        let k = try ElfKernel(f)
        XCTAssertEqual(k.segments, [.init(fileOffset: 64 + 112, fileSize: 4, physicalAddress: 0x100_0000, memorySize: 0x2000)])
        XCTAssertEqual(k.entry64, 0x100_0010)
        XCTAssertEqual(k.pvhEntry, 0x100_0000)
        XCTAssertEqual(k.physicalEnd, 0x100_2000)
        let m = try GuestMemory(size: 32 << 20)
        try m.fill(0x100_0000, count: 0x2000, byte: 0xee)
        try k.load(f, into: m)
        XCTAssertEqual(try m.read(0x100_0000, count: 6), code + [0, 0])   // bss zeroed
        let noPVH = try ElfKernel(try MappedFile(name: "plain", contents: TestImages.elf(code: code)))
        XCTAssertNil(noPVH.pvhEntry)
    }

    func testHostileElfImagesAreRejected() throws {
        let good = TestImages.elf(code: [1, 2, 3, 4], pvhEntry: 0x100_0000)
        var cases: [(String, [UInt8])] = [
            ("truncated", Array(good.prefix(40))),
            ("arm64", TestImages.elf(code: [1], machine: 183)),
        ]
        var past = good; past.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(1 << 40).littleEndian, toByteOffset: 64 + 8, as: UInt64.self) }
        cases.append(("segment offset past the end", past))
        var size = good; size.withUnsafeMutableBytes { $0.storeBytes(of: UInt64.max.littleEndian, toByteOffset: 64 + 32, as: UInt64.self) }
        cases.append(("huge filesz", size))
        var phnum = good; phnum.withUnsafeMutableBytes { $0.storeBytes(of: UInt16(0xffff).littleEndian, toByteOffset: 56, as: UInt16.self) }
        cases.append(("too many program headers", phnum))
        for (name, bytes) in cases {
            XCTAssertThrowsError(try ElfKernel(try MappedFile(name: name, contents: bytes)), name)
        }
        // A segment that does not fit in guest memory is refused at load time, not written partly.
        let high = try MappedFile(name: "high", contents: TestImages.elf(code: [1, 2], paddr: 0x4000_0000))
        XCTAssertThrowsError(try ElfKernel(high).load(high, into: try GuestMemory(size: 1 << 20)))
        // A note that claims more than the segment holds ends the walk without a PVH entry.
        var note = good
        let noteStart = good.count - 48
        note.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(4000).littleEndian, toByteOffset: noteStart + 4, as: UInt32.self) }
        XCTAssertNil(try ElfKernel(try MappedFile(name: "note", contents: note)).pvhEntry)
    }

    func testBzImageHeader() throws {
        let payload = [UInt8](repeating: 0x90, count: 1000)
        let f = try MappedFile(name: "bz", contents: TestImages.bzImage(payload: payload))
        let k = try BzImage(f)
        XCTAssertEqual(k.kernelOffset, 5 * 512)
        XCTAssertEqual(k.kernelSize, 1000)
        XCTAssertEqual(k.setupHeader.count, 0x26c - 0x1f1)
        XCTAssertEqual(k.loadAddress, 0x10_0000)      // not relocatable: 1 MiB
        XCTAssertEqual(k.entry64, 0x10_0200)
        XCTAssertEqual(k.physicalEnd, 0x100_0000 + 0x20_0000)
        let r = try BzImage(try MappedFile(name: "reloc", contents: TestImages.bzImage(payload: payload, relocatable: true)))
        XCTAssertEqual(r.loadAddress, 0x100_0000)
        XCTAssertThrowsError(try BzImage(try MappedFile(name: "old", contents: TestImages.bzImage(payload: payload, version: 0x020a))))
        XCTAssertThrowsError(try BzImage(try MappedFile(name: "32", contents: TestImages.bzImage(payload: payload, xloadflags: 0))))
        XCTAssertThrowsError(try BzImage(try MappedFile(name: "short", contents: Array(TestImages.bzImage(payload: []).prefix(0x300)))))
        let m = try GuestMemory(size: 32 << 20)
        try k.load(f, into: m)
        XCTAssertEqual(try m.read(0x10_0000, count: 2), [0x90, 0x90])
        XCTAssertThrowsError(try k.load(f, into: try GuestMemory(size: 8 << 20)))   // init_size does not fit
    }

    func testE820MapAroundBaseMemoryAndTheMMIOGap() throws {
        let small = try GuestMemory(size: 64 << 20)
        XCTAssertEqual(E820Map.build(for: small), [
            E820Entry(address: 0, size: 0x9_fc00, type: E820Entry.ram),
            E820Entry(address: 0x9_fc00, size: 0x400, type: E820Entry.reserved),
            E820Entry(address: 0x10_0000, size: (64 << 20) - 0x10_0000, type: E820Entry.ram),
        ])
        XCTAssertEqual(E820Map.lowMemoryEnd(small), 64 << 20)
        let layout = X86Layout.ramRegions(size: (3 << 30) + (1 << 30))
        XCTAssertEqual(layout.map(\.base), [0, 0x1_0000_0000])
        XCTAssertEqual(layout.map(\.size), [0xd000_0000, (4 << 30) - 0xd000_0000])
        XCTAssertEqual(X86Layout.ramRegions(size: 1 << 20).map(\.size), [1 << 20])
        let split = try GuestMemory(layout: [(0, 2 << 20), (0x1_0000_0000, 2 << 20)])
        let map = E820Map.build(for: split)
        XCTAssertEqual(map.last, E820Entry(address: 0x1_0000_0000, size: 2 << 20, type: E820Entry.ram))
        XCTAssertEqual(E820Map.lowMemoryEnd(split), 2 << 20)
    }

    func testZeroPageForBzImageAndVmlinux() throws {
        let bz = try BzImage(try MappedFile(name: "bz", contents: TestImages.bzImage(payload: [0x90])))
        let e820 = E820Map.build(for: try GuestMemory(size: 64 << 20))
        let page = try BootParams.build(setupHeader: bz.setupHeader,
                                        placement: .init(commandLine: 0x2_0000, commandLineSize: 10, initrd: (0x300_0000, 0x1234)),
                                        e820: e820, code32Start: bz.loadAddress)
        func u32(_ o: Int) -> UInt32 { page.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt32.self) } }
        func u64(_ o: Int) -> UInt64 { page.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt64.self) } }
        XCTAssertEqual(page.count, 4096)
        XCTAssertEqual(u32(0x202), BzImage.headerMagic)
        XCTAssertEqual(page[0x210], 0xff)                    // type_of_loader
        XCTAssertEqual(page[0x211] & 0x81, 0x81)             // LOADED_HIGH | CAN_USE_HEAP
        XCTAssertEqual(u32(0x228), 0x2_0000)                 // cmd_line_ptr
        XCTAssertEqual(u32(0x218), 0x300_0000)               // ramdisk_image
        XCTAssertEqual(u32(0x21c), 0x1234)                   // ramdisk_size
        XCTAssertEqual(u32(0x214), 0x10_0000)                // code32_start
        XCTAssertEqual(page[0x1e8], 3)                       // e820_entries
        XCTAssertEqual(u64(0x2d0 + 20), 0x9_fc00)
        XCTAssertEqual(u32(0x2d0 + 20 + 16), E820Entry.reserved)
        XCTAssertEqual(u64(0x2d0 + 40 + 8), (64 << 20) - 0x10_0000)
        let plain = try BootParams.build(setupHeader: nil, placement: .init(commandLine: 0x2_0000, commandLineSize: 4), e820: e820)
        plain.withUnsafeBytes {
            XCTAssertEqual($0.loadUnaligned(fromByteOffset: 0x1fe, as: UInt16.self), 0xaa55)
            XCTAssertEqual($0.loadUnaligned(fromByteOffset: 0x202, as: UInt32.self), BzImage.headerMagic)
            XCTAssertEqual($0.loadUnaligned(fromByteOffset: 0x218, as: UInt32.self), 0)   // no initrd
        }
        let tooMany = [E820Entry](repeating: e820[0], count: 129)
        XCTAssertThrowsError(try BootParams.build(setupHeader: nil, placement: .init(commandLine: 0, commandLineSize: 1), e820: tooMany))
    }

    func testPVHStartInfo() throws {
        let e820 = E820Map.build(for: try GuestMemory(size: 64 << 20))
        let parts = try PVHStartInfo.build(commandLine: 0x2_0000, initrd: (0x300_0000, 4096), e820: e820)
        XCTAssertEqual(parts.map(\.0), [0x6000, 0x6040, 0x6100])
        let info = parts[0].1
        func u32(_ b: [UInt8], _ o: Int) -> UInt32 { b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt32.self) } }
        func u64(_ b: [UInt8], _ o: Int) -> UInt64 { b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt64.self) } }
        XCTAssertEqual(info.count, 56)
        XCTAssertEqual(u32(info, 0), 0x336e_c578)
        XCTAssertEqual(u32(info, 4), 1)
        XCTAssertEqual(u32(info, 12), 1)                     // nr_modules
        XCTAssertEqual(u64(info, 16), 0x6040)                // modlist_paddr
        XCTAssertEqual(u64(info, 24), 0x2_0000)              // cmdline_paddr
        XCTAssertEqual(u64(info, 40), 0x6100)                // memmap_paddr
        XCTAssertEqual(u32(info, 48), 3)                     // memmap_entries
        XCTAssertEqual(u64(parts[1].1, 0), 0x300_0000)
        XCTAssertEqual(u64(parts[1].1, 8), 4096)
        XCTAssertEqual(parts[2].1.count, 3 * 24)
        XCTAssertEqual(u32(parts[2].1, 24 + 16), E820Entry.reserved)
        let none = try PVHStartInfo.build(commandLine: 0x2_0000, initrd: nil, e820: e820)
        XCTAssertEqual(none.count, 2)
        XCTAssertEqual(u32(none[0].1, 12), 0)
        XCTAssertEqual(PVHStartInfo.Layout().memoryMapCapacity, 160)   // fits below the zero page
    }

    func testMPTableChecksumsAndEntries() throws {
        for cpus in [1, 2, 8, 254] {
            let t = try MPTable.build(cpus: cpus)
            XCTAssertEqual(Array(t[0..<4]), Array("_MP_".utf8))
            XCTAssertEqual(t[0..<16].reduce(UInt8(0), &+), 0, "floating pointer checksum")
            let physptr = t.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) }
            XCTAssertEqual(UInt64(physptr), X86Layout.mpTable + 16)
            let table = Array(t[16...])
            XCTAssertEqual(Array(table[0..<4]), Array("PCMP".utf8))
            let length = table.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: 4, as: UInt16.self)) }
            XCTAssertEqual(length, table.count)
            XCTAssertEqual(table.reduce(UInt8(0), &+), 0, "table checksum")
            // Walk the entries: processors first, the BSP flagged, then bus, IOAPIC, 24 + 2 interrupts.
            var o = 44, counts = [0, 0, 0, 0, 0], bsp = 0
            while o < table.count {
                let type = Int(table[o])
                counts[type] += 1
                if type == 0, table[o + 3] & 2 != 0 { bsp += 1 }
                o += type == 0 ? 20 : 8
            }
            XCTAssertEqual(o, table.count)
            XCTAssertEqual(counts, [cpus, 1, 1, 24, 2])
            XCTAssertEqual(bsp, 1)
            XCTAssertEqual(table.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: 34, as: UInt16.self)) }, cpus + 28)
        }
        XCTAssertThrowsError(try MPTable.build(cpus: 0))
        XCTAssertThrowsError(try MPTable.build(cpus: 255))
        XCTAssertLessThanOrEqual(X86Layout.mpTable + UInt64(try MPTable.build(cpus: 254).count), 0xa_0000 + 0x1_0000)
        XCTAssertThrowsError(try MPTable.write(cpus: 1, into: try GuestMemory(size: 0x9_f000)))
    }

    func testCPUIDNormalizationAndHiding() {
        func e(_ f: UInt32, _ i: UInt32 = 0, indexed: Bool = false, eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0) -> kvm_cpuid_entry2 {
            var x = kvm_cpuid_entry2()
            x.function = f; x.index = i; x.flags = indexed ? 1 : 0
            x.eax = eax; x.ebx = ebx; x.ecx = ecx; x.edx = edx
            return x
        }
        var t = CPUIDTable(entries: [
            e(1, ebx: 0xff00_0800, ecx: (1 << 26) | (1 << 30) | (1 << 23) | 1, edx: 0),
            e(7, indexed: true, ebx: (1 << 20) | (1 << 7) | (1 << 3)),
            e(0xb, 0, indexed: true), e(0xb, 1, indexed: true), e(0xb, 2, indexed: true),
            e(0xd, 0, indexed: true, eax: 7, ebx: 0x340), e(0xd, 1, indexed: true, eax: 1),
            // AMD: the host's core count (NC = 1, 2 cores) and a zeroed 0x8000001e, as KVM returns them.
            e(0x8000_0008, eax: 0x3030, ecx: 0x0001_7001), e(0x8000_001e),
        ])
        t.normalize(apicID: 3, vcpuCount: 4)
        let amd = t.entry(0x8000_0008)!
        XCTAssertEqual(amd.ecx & 0xff, 3)                   // NC: 4 cores
        XCTAssertEqual((amd.ecx >> 12) & 0xf, 2)            // ApicIdSize: 2 bits of core id
        XCTAssertEqual(amd.ecx >> 16, 1)                    // PerfTscSize untouched
        XCTAssertEqual(amd.eax, 0x3030)                     // address sizes untouched
        XCTAssertEqual(t.entry(0x8000_001e)!.eax, 3)        // extended APIC id
        XCTAssertEqual(t.entry(0x8000_001e)!.ebx, 3)        // core 3, one thread per core
        let leaf1 = t.entry(1)!
        XCTAssertEqual(leaf1.ebx >> 24, 3)                 // initial APIC id
        XCTAssertEqual((leaf1.ebx >> 16) & 0xff, 4)        // logical processors
        XCTAssertEqual(leaf1.ebx & 0xffff, 0x0800)         // brand/clflush untouched
        XCTAssertNotEqual(leaf1.ecx & (1 << 31), 0)        // hypervisor bit
        XCTAssertEqual(t.entry(0xb, index: 0)!.edx, 3)
        XCTAssertEqual(t.entry(0xb, index: 1)!.ebx, 4)
        XCTAssertEqual(t.entry(0xb, index: 1)!.eax, 2)      // 2 bits of core id
        XCTAssertEqual(t.entry(0xb, index: 2)!.ecx, 2)      // invalid level
        XCTAssertEqual(t.entries.filter { $0.function == 0xb }.count, 3)
        // KVM 6.x returns leaf 0xb with subleaf 0 only (no core level): it is rebuilt whole.
        var kvm6 = CPUIDTable(entries: [e(0, eax: 0xd), e(0xb, 0, indexed: true, ecx: 0x100)])
        kvm6.normalize(apicID: 1, vcpuCount: 2)
        XCTAssertEqual(kvm6.entries.filter { $0.function == 0xb }.map(\.index), [0, 1, 2])
        XCTAssertEqual(kvm6.entry(0xb, index: 1)!.ecx, 0x201)   // core level, subleaf 1
        XCTAssertEqual(kvm6.entry(0xb, index: 1)!.eax, 1)       // 1 bit of core id
        XCTAssertEqual(kvm6.entry(0xb, index: 1)!.ebx, 2)
        XCTAssertEqual(kvm6.entry(0xb, index: 2)!.edx, 1)       // x2APIC id on every subleaf
        XCTAssertTrue(kvm6.entries.filter { $0.function == 0xb }.allSatisfy { $0.flags == 1 })
        XCTAssertFalse(t.isSet(.tscDeadline))
        t.offer(.tscDeadline)                               // emulated by KVM, not reported
        XCTAssertTrue(t.isSet(.tscDeadline))
        XCTAssertEqual(t.entry(1)!.ecx & 1, 1)
        t.hide(CPUFeature.unavailableToEmulator)
        XCTAssertFalse(t.isSet(.tscDeadline))               // hidden again on PVM
        for f: CPUFeature in [.xsave, .rdrand, .popcnt, .smap, .smep] { XCTAssertFalse(t.isSet(f), f.name) }
        XCTAssertEqual(t.entry(1)!.ecx & 1, 1)              // sse3 untouched
        XCTAssertEqual(t.entry(7)!.ebx, 1 << 3)             // bmi1 untouched
        XCTAssertEqual(t.entry(0xd, index: 0)!.eax, 0)      // no XSAVE state described
    }

    func testLocalAPICDeliveryModes() {
        var apic = LocalAPIC(registers: [UInt8](repeating: 0, count: 1024))
        apic[LocalAPIC.lvtLINT0] = 0x0001_0000             // masked, fixed
        apic.setDeliveryMode(LocalAPIC.lvtLINT0, LocalAPIC.deliveryExtINT)
        apic.setDeliveryMode(LocalAPIC.lvtLINT1, LocalAPIC.deliveryNMI)
        XCTAssertEqual(apic[LocalAPIC.lvtLINT0], 0x0001_0700)
        XCTAssertEqual(apic[LocalAPIC.lvtLINT1], 0x0000_0400)
        XCTAssertEqual(apic.deliveryMode(LocalAPIC.lvtLINT0), 7)
        XCTAssertEqual(Array(apic.registers[0x350..<0x354]), [0, 7, 1, 0])
    }

    func testLinuxGDTSelectors() {
        let l = GDT.Layout.linux64
        XCTAssertEqual(l.segment(l.code).selector, 0x10)     // __BOOT_CS
        XCTAssertEqual(l.segment(l.data).selector, 0x18)     // __BOOT_DS
        XCTAssertEqual(l.segment(l.code).l, 1)
        let p = GDT.Layout.pvh
        let cs = p.segment(p.code)
        XCTAssertEqual(cs.l, 0); XCTAssertEqual(cs.db, 1); XCTAssertEqual(cs.limit, 0xffff_ffff); XCTAssertEqual(cs.type, 0xb)
        let tr = p.segment(p.tss)
        XCTAssertEqual(tr.limit, 0x67); XCTAssertEqual(tr.type, 0xb); XCTAssertEqual(tr.s, 0); XCTAssertEqual(tr.present, 1)
        XCTAssertLessThanOrEqual(X86Layout.gdtAddress + UInt64(GDT.linuxTable.count * 8), X86Layout.idtAddress)
    }
}
