/// A compressed x86 Linux kernel (bzImage) for the 64-bit boot protocol (Documentation/arch/x86/
/// boot.rst): the real-mode setup sectors carry the setup header at 0x1f1, the protected-mode
/// part follows them and is entered in 64-bit mode at its load address + 0x200.
public struct BzImage: Sendable {
    public enum Offset {
        public static let setupSects = 0x1f1, bootFlag = 0x1fe, jump = 0x200, header = 0x202, version = 0x206
        public static let typeOfLoader = 0x210, loadFlags = 0x211, code32Start = 0x214
        public static let ramdiskImage = 0x218, ramdiskSize = 0x21c, heapEndPtr = 0x224
        public static let cmdLinePtr = 0x228, initrdAddrMax = 0x22c, kernelAlignment = 0x230
        public static let relocatableKernel = 0x234, xloadflags = 0x236, cmdlineSize = 0x238
        public static let prefAddress = 0x258, initSize = 0x260
    }
    public static let headerMagic: UInt32 = 0x5372_6448   // "HdrS"
    public static let bootFlagMagic: UInt16 = 0xaa55
    static let loadedHigh: UInt8 = 0x01
    static let xlfKernel64: UInt16 = 0x01
    /// 2.12: xloadflags, and with it the 64-bit entry.
    static let minimumVersion: UInt16 = 0x020c

    /// The setup header as in the image: bytes [0x1f1, end of header), for the zero page.
    public let setupHeader: [UInt8]
    public let version: UInt16
    public let kernelOffset: Int
    public let kernelSize: Int
    public let relocatable: Bool
    public let preferredAddress: UInt64
    public let kernelAlignment: UInt32
    /// Memory the kernel needs from its load address while it decompresses and starts.
    public let initSize: UInt32
    public let initrdAddressMax: UInt32
    public let commandLineMax: UInt32

    public static func isBzImage(_ file: MappedFile) -> Bool {
        file.load(Offset.header, as: UInt32.self) == headerMagic && file.load(Offset.bootFlag, as: UInt16.self) == bootFlagMagic
    }

    public init(_ file: MappedFile) throws(KvmError) {
        func bad(_ why: String) -> KvmError { .invalidConfiguration("\(file.path): not a usable bzImage: \(why)") }
        guard BzImage.isBzImage(file) else { throw bad("no HdrS signature / 0xaa55 boot flag") }
        let version = file.load(Offset.version, as: UInt16.self)!
        guard version >= BzImage.minimumVersion else {
            throw bad("boot protocol \(version >> 8).\(version & 0xff) is older than 2.12 (no 64-bit entry)")
        }
        guard let xload = file.load(Offset.xloadflags, as: UInt16.self), xload & BzImage.xlfKernel64 != 0 else {
            throw bad("XLF_KERNEL_64 not set (no 64-bit entry point)")
        }
        guard let loadFlags = file.load(Offset.loadFlags, as: UInt8.self), loadFlags & BzImage.loadedHigh != 0 else {
            throw bad("LOADED_HIGH not set")
        }
        var sects = Int(file.load(Offset.setupSects, as: UInt8.self)!)
        if sects == 0 { sects = 4 }
        let kernelOffset = (sects + 1) * 512
        let headerEnd = 0x202 + Int(file.load(0x201, as: UInt8.self)!)
        guard kernelOffset < file.count, headerEnd <= kernelOffset, headerEnd > Offset.initSize + 4,
              let header = file.slice(Offset.setupSects, headerEnd - Offset.setupSects) else {
            throw bad("setup header or setup sectors extend past the file")
        }
        setupHeader = Array(header)
        self.version = version
        self.kernelOffset = kernelOffset
        kernelSize = file.count - kernelOffset
        relocatable = file.load(Offset.relocatableKernel, as: UInt8.self)! != 0
        preferredAddress = file.load(Offset.prefAddress, as: UInt64.self)!
        kernelAlignment = file.load(Offset.kernelAlignment, as: UInt32.self)!
        initSize = file.load(Offset.initSize, as: UInt32.self)!
        initrdAddressMax = file.load(Offset.initrdAddrMax, as: UInt32.self)!
        commandLineMax = file.load(Offset.cmdlineSize, as: UInt32.self)!
    }

    /// Where the protected-mode kernel goes: its preferred address when it can run anywhere,
    /// otherwise 1 MiB (the classic code32_start; it then decompresses itself to its fixed address).
    public var loadAddress: UInt64 { relocatable && preferredAddress >= X86Layout.highMemory ? preferredAddress : X86Layout.highMemory }

    /// The 64-bit entry point.
    public var entry64: UInt64 { loadAddress + 0x200 }

    /// The end of the memory the kernel uses while starting (exclusive).
    public var physicalEnd: UInt64 {
        max(loadAddress + UInt64(kernelSize), max(loadAddress, preferredAddress) + UInt64(initSize))
    }

    public func load(_ file: MappedFile, into memory: GuestMemory) throws(KvmError) {
        guard memory.contains(loadAddress, length: Int(physicalEnd - loadAddress)) else {
            throw .invalidConfiguration("bzImage needs guest memory up to 0x\(String(physicalEnd, radix: 16))")
        }
        try memory.write(loadAddress, from: file.slice(kernelOffset, kernelSize)!)
    }
}
