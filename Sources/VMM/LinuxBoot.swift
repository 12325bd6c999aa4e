/// What to boot: a kernel image (vmlinux ELF or bzImage), an optional initramfs, the command line.
public struct LinuxBootConfig: Sendable {
    public var kernelPath: String
    public var initrdPath: String?
    public var commandLine: String
    /// nil: PVH for a vmlinux that has the PVH note, the 64-bit protocol otherwise.
    public var bootProtocol: BootProtocol?
    /// Append the `virtio_mmio.device=` parameters of the VM's virtio devices.
    public var announceVirtioDevices = true

    public init(kernelPath: String, initrdPath: String? = nil, commandLine: String = "console=ttyS0",
                bootProtocol: BootProtocol? = nil) {
        self.kernelPath = kernelPath; self.initrdPath = initrdPath
        self.commandLine = commandLine; self.bootProtocol = bootProtocol
    }
}

/// Where everything went, for logs and tests.
public struct LinuxBootLayout: Sendable, CustomStringConvertible {
    public var kernelFormat = ""
    public var bootProtocol = BootProtocol.pvh
    public var entry: UInt64 = 0
    public var kernelStart: UInt64 = 0
    public var kernelEnd: UInt64 = 0
    public var commandLine = ""
    public var initrd: (address: UInt64, size: Int)?
    public var e820: [E820Entry] = []
    /// hvm_start_info (PVH) or boot_params (64-bit protocol).
    public var bootInfo: UInt64 = 0
    /// Time spent loading (ns): mapping files, copying, writing tables, setting registers.
    public var loadNanoseconds: UInt64 = 0

    public var description: String {
        var s = "\(kernelFormat) via \(bootProtocol.rawValue) entry 0x\(String(entry, radix: 16)), kernel [0x\(String(kernelStart, radix: 16))-0x\(String(kernelEnd, radix: 16)))"
        if let r = initrd { s += ", initrd 0x\(String(r.address, radix: 16))+\(r.size)" }
        return s + ", cmdline \"\(commandLine)\""
    }
}

/// Loads Linux into a `MicroVM` and sets up the vCPUs: kernel segments, command line,
/// initramfs at the top of low memory, e820 map, MP table, boot info (PVH start info or zero
/// page), the boot vCPU's entry registers, and every vCPU's MSRs.
public enum LinuxLoader {
    public static func load(_ config: LinuxBootConfig, into vm: MicroVM) throws(KvmError) -> LinuxBootLayout {
        let started = Clock.monotonic()
        let memory = vm.memory
        var layout = LinuxBootLayout()
        let kernel = try MappedFile(path: config.kernelPath)
        var commandLineMax = X86Layout.commandLineMax
        var initrdMax = X86Layout.mmioGapStart - 1
        var bzImage: BzImage?

        if ElfKernel.isELF(kernel) {
            let k = try ElfKernel(kernel)
            try k.load(kernel, into: memory)
            layout.kernelFormat = "vmlinux"
            layout.kernelStart = k.segments.map(\.physicalAddress).min() ?? 0
            layout.kernelEnd = k.physicalEnd
            let proto = config.bootProtocol ?? (k.pvhEntry != nil ? .pvh : .linux64)
            if proto == .pvh, k.pvhEntry == nil {
                throw .invalidConfiguration("\(config.kernelPath) has no PVH entry note (build it with CONFIG_PVH)")
            }
            layout.bootProtocol = proto
            layout.entry = proto == .pvh ? UInt64(k.pvhEntry!) : k.entry64
        } else if BzImage.isBzImage(kernel) {
            let k = try BzImage(kernel)
            guard config.bootProtocol != .pvh else {
                throw .invalidConfiguration("PVH needs the uncompressed vmlinux, not a bzImage")
            }
            try k.load(kernel, into: memory)
            bzImage = k
            layout.kernelFormat = "bzImage"
            layout.bootProtocol = .linux64
            layout.kernelStart = k.loadAddress
            layout.kernelEnd = k.physicalEnd
            layout.entry = k.entry64
            commandLineMax = min(commandLineMax, Int(k.commandLineMax) + 1)
            initrdMax = min(initrdMax, UInt64(k.initrdAddressMax))
        } else {
            throw .invalidConfiguration("\(config.kernelPath) is neither an ELF vmlinux nor a bzImage")
        }

        // Command line, NUL-terminated, below the kernel.
        var params = config.commandLine
        if config.announceVirtioDevices, !vm.virtioKernelParameters.isEmpty {
            params += (params.isEmpty ? "" : " ") + vm.virtioKernelParameters.joined(separator: " ")
        }
        let cmdline = Array(params.utf8) + [0]
        guard cmdline.count <= commandLineMax else {
            throw .invalidConfiguration("kernel command line is \(cmdline.count) bytes; the kernel accepts \(commandLineMax)")
        }
        try memory.write(X86Layout.commandLine, cmdline)
        layout.commandLine = params

        // Initramfs: page-aligned at the top of low memory, above the kernel.
        if let path = config.initrdPath {
            let initrd = try MappedFile(path: path)
            let top = min(E820Map.lowMemoryEnd(memory), initrdMax + 1)
            let size = UInt64(initrd.count)
            guard size <= top, (top - size) & ~0xfff >= layout.kernelEnd else {
                throw .invalidConfiguration("initramfs (\(size) bytes) does not fit between the kernel end 0x\(String(layout.kernelEnd, radix: 16)) and 0x\(String(top, radix: 16)); give the VM more memory")
            }
            let address = (top - size) & ~0xfff
            if initrd.count > 0 { try memory.write(address, from: initrd.bytes) }
            layout.initrd = (address, initrd.count)
        }

        layout.e820 = E820Map.build(for: memory)
        try MPTable.write(cpus: vm.options.vcpuCount, into: memory)

        switch layout.bootProtocol {
        case .pvh:
            for (address, bytes) in try PVHStartInfo.build(commandLine: X86Layout.commandLine, initrd: layout.initrd, e820: layout.e820) {
                try memory.write(address, bytes)
            }
            layout.bootInfo = X86Layout.pvhStartInfo
            try LinuxEntry.pvh(vm.vcpu, memory: memory, entry: UInt32(layout.entry), startInfo: layout.bootInfo)
        case .linux64:
            let zeroPage = try BootParams.build(
                setupHeader: bzImage?.setupHeader,
                placement: .init(commandLine: X86Layout.commandLine, commandLineSize: cmdline.count, initrd: layout.initrd),
                e820: layout.e820, code32Start: bzImage?.loadAddress)
            try memory.write(X86Layout.zeroPage, zeroPage)
            layout.bootInfo = X86Layout.zeroPage
            try LinuxEntry.linux64(vm.vcpu, memory: memory, entry: layout.entry, bootParams: layout.bootInfo)
        }
        // Every vCPU: MSRs survive INIT (the others' registers are set by the boot vCPU's
        // INIT/SIPI through the in-kernel LAPIC; `MicroVM` already set every LAPIC's LINTs).
        for v in vm.vcpus { try BootMSRs.apply(to: v) }
        layout.loadNanoseconds = Clock.monotonic() - started
        return layout
    }
}
