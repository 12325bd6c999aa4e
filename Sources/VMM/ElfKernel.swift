/// An uncompressed x86_64 Linux `vmlinux` (ELF64): its loadable segments at their physical
/// addresses, the 64-bit entry (e_entry, startup_64) and the PVH entry from the Xen ELF note
/// XEN_ELFNOTE_PHYS32_ENTRY that kernels built with CONFIG_PVH carry. Every offset and size read
/// from the file is checked against the file.
public struct ElfKernel: Sendable {
    public struct Segment: Sendable, Equatable {
        public let fileOffset: Int
        public let fileSize: Int
        public let physicalAddress: UInt64
        public let memorySize: UInt64
    }

    public let segments: [Segment]
    /// e_entry: the physical address of startup_64 for the 64-bit boot protocol.
    public let entry64: UInt64
    /// The 32-bit PVH entry (pvh_start_xen), nil when the kernel has no PVH note.
    public let pvhEntry: UInt32?

    static let ptLoad: UInt32 = 1, ptNote: UInt32 = 4
    static let xenNotePhys32Entry: UInt32 = 18

    public static func isELF(_ file: MappedFile) -> Bool {
        file.load(0, as: UInt32.self) == 0x464c_457f
    }

    public init(_ file: MappedFile) throws(KvmError) {
        func bad(_ why: String) -> KvmError { .invalidConfiguration("\(file.path): not a loadable x86_64 vmlinux: \(why)") }
        guard ElfKernel.isELF(file) else { throw bad("no ELF magic") }
        guard file.load(4, as: UInt8.self) == 2, file.load(5, as: UInt8.self) == 1 else { throw bad("not ELF64 little-endian") }
        guard file.load(18, as: UInt16.self) == 62 else { throw bad("e_machine is not x86_64") }
        guard let entry = file.load(24, as: UInt64.self), let phoff = file.load(32, as: UInt64.self),
              let phentsize = file.load(54, as: UInt16.self), let phnum = file.load(56, as: UInt16.self) else {
            throw bad("truncated ELF header")
        }
        guard phentsize == 56, phnum > 0, phoff < UInt64(file.count),
              file.slice(Int(phoff), Int(phnum) * 56) != nil else { throw bad("program headers outside the file") }
        var segments: [Segment] = []
        var pvh: UInt32?
        for i in 0..<Int(phnum) {
            let h = Int(phoff) + i * 56
            let type = file.load(h, as: UInt32.self)!
            let offset = file.load(h + 8, as: UInt64.self)!, paddr = file.load(h + 24, as: UInt64.self)!
            let filesz = file.load(h + 32, as: UInt64.self)!, memsz = file.load(h + 40, as: UInt64.self)!
            guard offset <= UInt64(file.count), filesz <= UInt64(file.count) - offset else {
                throw bad("segment \(i) extends past the end of the file")
            }
            switch type {
            case ElfKernel.ptLoad:
                guard filesz <= memsz, !paddr.addingReportingOverflow(memsz).overflow else {
                    throw bad("segment \(i) has inconsistent sizes")
                }
                segments.append(Segment(fileOffset: Int(offset), fileSize: Int(filesz), physicalAddress: paddr, memorySize: memsz))
            case ElfKernel.ptNote:
                pvh = pvh ?? ElfKernel.pvhEntry(file, notes: Int(offset), length: Int(filesz))
            default: break
            }
        }
        guard !segments.isEmpty else { throw bad("no PT_LOAD segment") }
        self.segments = segments
        entry64 = entry
        pvhEntry = pvh
    }

    /// Walks ELF notes (4-byte aligned name and descriptor) for Xen's PHYS32_ENTRY.
    static func pvhEntry(_ file: MappedFile, notes: Int, length: Int) -> UInt32? {
        var p = notes
        let end = notes + length
        func up4(_ x: Int) -> Int { (x + 3) & ~3 }
        while p + 12 <= end {
            guard let namesz = file.load(p, as: UInt32.self), let descsz = file.load(p + 4, as: UInt32.self),
                  let type = file.load(p + 8, as: UInt32.self), namesz < 4096, descsz < 4096 else { return nil }
            let name = p + 12, desc = name + up4(Int(namesz))
            let next = desc + up4(Int(descsz))
            guard next <= end else { return nil }
            if type == xenNotePhys32Entry, namesz == 4, let n = file.slice(name, 4), Array(n) == Array("Xen\0".utf8),
               descsz >= 4, let v = file.load(desc, as: UInt32.self) {
                return v
            }
            p = next
        }
        return nil
    }

    /// The end of the highest segment (exclusive).
    public var physicalEnd: UInt64 { segments.map { $0.physicalAddress + $0.memorySize }.max() ?? 0 }

    /// Copies the segments into guest memory and zeroes their tails (bss).
    public func load(_ file: MappedFile, into memory: GuestMemory) throws(KvmError) {
        for s in segments {
            guard s.memorySize <= UInt64(Int.max), memory.contains(s.physicalAddress, length: Int(s.memorySize)) else {
                throw .invalidConfiguration("kernel segment at 0x\(String(s.physicalAddress, radix: 16)) (+\(s.memorySize)) does not fit in guest memory")
            }
            try memory.write(s.physicalAddress, from: file.slice(s.fileOffset, s.fileSize)!)
            if s.memorySize > UInt64(s.fileSize) {
                try memory.fill(s.physicalAddress + UInt64(s.fileSize), count: Int(s.memorySize) - s.fileSize)
            }
        }
    }
}
