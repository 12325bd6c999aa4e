/// Linux's `struct boot_params` ("zero page", Documentation/arch/x86/zero-page.rst) for the
/// 64-bit boot protocol: the image's setup header (or a minimal one for a vmlinux), the command
/// line and initramfs pointers, and the e820 memory map.
public enum BootParams {
    public static let size = 4096
    public enum Offset {
        public static let extRamdiskImage = 0x0c0, extRamdiskSize = 0x0c4, extCmdLinePtr = 0x0c8
        public static let e820Entries = 0x1e8, setupHeader = 0x1f1, e820Table = 0x2d0
    }
    public static let maxE820Entries = 128
    /// "Undefined" boot loader id (boot.rst: 0xff).
    static let loaderUndefined: UInt8 = 0xff
    static let canUseHeap: UInt8 = 0x80

    public struct Placement: Sendable {
        public var commandLine: UInt64
        /// Bytes including the terminating NUL.
        public var commandLineSize: Int
        public var initrd: (address: UInt64, size: Int)?
        public init(commandLine: UInt64, commandLineSize: Int, initrd: (address: UInt64, size: Int)? = nil) {
            self.commandLine = commandLine; self.commandLineSize = commandLineSize; self.initrd = initrd
        }
    }

    /// The zero page. `setupHeader` is BzImage.setupHeader, or nil for a vmlinux entered at
    /// startup_64 (then a minimal header is written, as other VMMs do).
    public static func build(setupHeader: [UInt8]?, placement: Placement, e820: [E820Entry],
                             code32Start: UInt64? = nil) throws(KvmError) -> [UInt8] {
        guard e820.count <= maxE820Entries else { throw .invalidConfiguration("\(e820.count) e820 entries (at most \(maxE820Entries))") }
        var p = LittleEndianBytes(capacity: size)
        p.zeros(size)
        typealias H = BzImage.Offset
        if let header = setupHeader {
            guard Offset.setupHeader + header.count <= Offset.e820Table else { throw .invalidConfiguration("setup header too long") }
            for (i, b) in header.enumerated() { p.patch(b, at: Offset.setupHeader + i) }
            p.patch(UInt8(header[H.loadFlags - Offset.setupHeader] | canUseHeap), at: H.loadFlags)
            p.patch(UInt16(0xfe00), at: H.heapEndPtr)
        } else {
            p.patch(BzImage.bootFlagMagic, at: H.bootFlag)
            p.patch(BzImage.headerMagic, at: H.header)
            p.patch(UInt16(0x020f), at: H.version)
            p.patch(UInt32(0x0100_0000), at: H.kernelAlignment)
            p.patch(UInt32(X86Layout.commandLineMax - 1), at: H.cmdlineSize)
        }
        p.patch(loaderUndefined, at: H.typeOfLoader)
        if let c = code32Start { p.patch(UInt32(truncatingIfNeeded: c), at: H.code32Start) }
        p.patch(UInt32(truncatingIfNeeded: placement.commandLine), at: H.cmdLinePtr)
        p.patch(UInt32(truncatingIfNeeded: placement.commandLine >> 32), at: Offset.extCmdLinePtr)
        if let r = placement.initrd {
            p.patch(UInt32(truncatingIfNeeded: r.address), at: H.ramdiskImage)
            p.patch(UInt32(truncatingIfNeeded: UInt64(r.size)), at: H.ramdiskSize)
            p.patch(UInt32(truncatingIfNeeded: r.address >> 32), at: Offset.extRamdiskImage)
            p.patch(UInt32(truncatingIfNeeded: UInt64(r.size) >> 32), at: Offset.extRamdiskSize)
        }
        p.patch(UInt8(e820.count), at: Offset.e820Entries)
        for (i, e) in e820.enumerated() {
            let o = Offset.e820Table + 20 * i
            p.patch(e.address, at: o)
            p.patch(e.size, at: o + 8)
            p.patch(e.type, at: o + 16)
        }
        return p.bytes
    }
}
