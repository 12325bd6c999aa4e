#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Synchronization

/// One VM: guest memory at 0, the legacy devices (serial 0x3f8, i8042, debug-exit port),
/// virtio-mmio devices in the MMIO gap, and the exit loop. vCPU 0 (the boot processor) runs on
/// the thread that calls `run`; each further vCPU on a thread of its own, started by `run`.
public final class MicroVM {
    public struct Options {
        public var memorySize: Int = 4 << 20
        /// In-kernel PIC/IOAPIC/LAPIC (needed for Linux; then HLT does not exit).
        public var irqchip = true
        /// In-kernel PIT (Linux calibrates against it).
        public var pit = false
        /// KVM_SET_CPUID2 with what KVM supports (Linux reads CPUID; tiny guests do not).
        public var cpuid = true
        /// CPUID features hidden from the guest (see `CPUFeature.unavailableToEmulator`).
        public var hiddenCPUFeatures: [CPUFeature] = []
        /// vCPUs, one thread each (APIC ids 0..<n; CPUID topology and MP table to match). The
        /// others wait for the boot processor's INIT/SIPI in the in-kernel LAPIC, so more than
        /// one needs `irqchip`.
        public var vcpuCount = 1
        public init() {}
    }

    public let kvm: Kvm
    public let vm: KvmVM
    public let memory: GuestMemory
    /// All vCPUs; `vcpus[i].id == i`.
    public let vcpus: [Vcpu]
    /// The boot processor.
    public var vcpu: Vcpu { vcpus[0] }
    public let portIO = PortIOBus()
    public let mmio = MMIOBus()
    public let serial = Serial8250()
    public let i8042 = I8042()
    public let debugExit = DebugExitPort()
    public let options: Options
    public private(set) var virtioDevices: [(transport: VirtioMMIOTransport, base: UInt64, irq: UInt32)] = []
    /// Exits of the boot vCPU in the last `run`, and when its first one arrived (monotonic ns).
    public private(set) var exitCount = 0
    public private(set) var firstExitAt: UInt64?
    /// Why the current `run` ends; the first vCPU or device to end it wins.
    let runEnd = RunEnd()
    /// Serialises the legacy port-I/O devices (serial, i8042, debug port) between vCPU threads.
    let portLock = DeviceLock()
    /// Thread-safe: `kicker.requestStop()` ends a `run` in progress with `.stopped`.
    public let kicker: VcpuKicker
    /// The device I/O thread, once `startIOThread()` has run.
    public private(set) var ioThread: IOThread?
    /// ioeventfds (one per virtqueue) and irqfds (one per device), kept open with the VM.
    var eventFDs: [EventFD] = []

    public init(options: Options = Options(), kvm: Kvm? = nil) throws(KvmError) {
        self.options = options
        let kvm = if let kvm { kvm } else { try Kvm() }
        var needed: [KvmCapability] = [.userMemory, .setTSSAddr, .immediateExit]
        if options.irqchip { needed += [.irqchip] }
        if options.pit { needed += [.pit2] }
        if options.cpuid { needed += [.extCPUID] }
        try kvm.requireCapabilities(needed)
        guard (1...MPTable.maxCPUs).contains(options.vcpuCount) else {
            throw .invalidConfiguration("\(options.vcpuCount) vCPUs (1...\(MPTable.maxCPUs))")
        }
        guard options.vcpuCount == 1 || options.irqchip else {
            throw .invalidConfiguration("several vCPUs need the in-kernel irqchip (INIT/SIPI)")
        }
        self.kvm = kvm
        vm = try kvm.createVM()
        // Memory first: the first memslot change after KVM_CREATE_IRQCHIP waits for an SRCU
        // grace period (5-11 ms measured here); before it, registration takes ~40 us.
        memory = try GuestMemory(layout: X86Layout.ramRegions(size: options.memorySize))
        try vm.register(memory)
        try vm.setTSSAddress()
        if options.irqchip { try vm.createIRQChip() }
        if options.pit { try vm.createPIT2() }
        var vcpus: [Vcpu] = []
        let supported = options.cpuid ? try CPUIDTable.supported(by: kvm) : nil
        // KVM_GET_SUPPORTED_CPUID leaves the TSC-deadline bit to user space. Offering it spares
        // the guest the LAPIC timer calibration against the PIT (~10 PIT ticks per boot), as
        // QEMU and Firecracker do; it needs the in-kernel LAPIC.
        let tscDeadline = options.irqchip && kvm.has(.tscDeadlineTimer)
        for id in 0..<options.vcpuCount {
            let v = try vm.createVcpu(id: id)
            if var table = supported {
                table.normalize(apicID: UInt32(id), vcpuCount: options.vcpuCount)
                if tscDeadline { table.offer(.tscDeadline) }
                table.hide(options.hiddenCPUFeatures)
                try table.apply(to: v)
            }
            vcpus.append(v)
        }
        self.vcpus = vcpus
        kicker = VcpuKicker(vcpus: vcpus)
        // Every LAPIC as firmware leaves it (LINT0 ExtINT, LINT1 NMI), written once all vCPUs
        // exist: KVM_SET_LAPIC also makes KVM rebuild its APIC-id map. Without it the map held
        // only vCPU 0 and an INIT/SIPI to APIC id 1 went nowhere (found in the nested setup).
        if options.irqchip { for v in vcpus { try LocalAPIC.configureLINTs(v) } }

        try portIO.insert(serial, base: UInt64(X86Ports.serial0), length: 8)
        try portIO.insert(i8042, base: UInt64(X86Ports.i8042Data), length: 5)
        try portIO.insert(debugExit, base: UInt64(X86Ports.debugExit), length: 1)
        i8042.onReset = { [unowned self] in endRun(.reset) }
        debugExit.onExit = { [unowned self] v in endRun(.debugExit(status: v)) }
        if options.irqchip {
            serial.onInterrupt = { [unowned self] in try? vm.pulseIRQ(X86Ports.serial0IRQ) }
        }
    }

    /// Copies a flat binary into guest memory (bounds-checked).
    public func load(_ program: [UInt8], at address: UInt64 = X86Layout.highMemory) throws(KvmError) {
        try memory.write(address, program)
    }

    /// Direct 64-bit entry at `entry`; the stack defaults to the top of guest memory.
    public func enterLongMode(entry: UInt64 = X86Layout.highMemory, stack: UInt64? = nil, rsi: UInt64 = 0) throws(KvmError) {
        try LongMode.configure(vcpu, memory: memory, entry: entry,
                               stack: stack ?? UInt64(options.memorySize) & ~0xf, rsi: rsi)
    }

    /// Loads a Linux kernel (and initramfs) and prepares the boot vCPU; see `LinuxLoader`.
    /// Add virtio devices first: their `virtio_mmio.device=` parameters go on the command line.
    @discardableResult
    public func loadLinux(_ config: LinuxBootConfig) throws(KvmError) -> LinuxBootLayout {
        try LinuxLoader.load(config, into: self)
    }

    /// Adds a virtio-mmio device in the next 4 KiB window of the MMIO gap with the next IRQ.
    @discardableResult
    public func addVirtio(_ device: VirtioDevice) throws(KvmError) -> VirtioMMIOTransport {
        let n = UInt64(virtioDevices.count)
        let base = X86Layout.virtioMMIOBase + n * X86Layout.virtioMMIOStride
        let irq = X86Layout.virtioFirstIRQ + UInt32(n)
        let t = VirtioMMIOTransport(device: device, memory: memory)
        try mmio.insert(t, base: base, length: VirtioMMIOTransport.windowSize)
        if options.irqchip { t.onInterrupt = { [unowned self] in try? vm.pulseIRQ(irq) } }
        virtioDevices.append((t, base, irq))
        return t
    }

    /// Moves the virtio devices' queue work off the vCPU thread: one ioeventfd per queue
    /// (KVM_IOEVENTFD on QueueNotify, matching the queue index, so a notify never exits to user
    /// space) served by a new I/O thread, and one irqfd per device (KVM_IRQFD on its GSI), which
    /// the transport signals from whichever thread raises the interrupt. The vCPU thread keeps
    /// the register accesses; the transport's lock serialises the two. Call after the last
    /// `addVirtio` and before `run`; host-side sources can be added to the thread afterwards.
    @discardableResult
    public func startIOThread() throws(KvmError) -> IOThread {
        if let t = ioThread { return t }
        guard options.irqchip else { throw .invalidConfiguration("irqfd needs the in-kernel irqchip") }
        try kvm.requireCapabilities([.irqfd, .ioeventfd])
        let io = try IOThread()
        for (transport, base, irq) in virtioDevices {
            let irqFD = try EventFD()
            try vm.assignIRQFD(irqFD.fd, gsi: irq)
            eventFDs.append(irqFD)
            transport.lock.withLock { transport.onInterrupt = { irqFD.signal() } }
            for q in transport.queues.indices {
                let e = try EventFD()
                try vm.assignIOEventFD(e.fd, address: base + VirtioMMIOTransport.Reg.queueNotify, length: 4, value: UInt64(q))
                eventFDs.append(e)
                io.add(fd: e.fd, events: { Int16(POLLIN) }) { [unowned transport] _ in
                    if e.take() > 0 { transport.notify(queue: q) }
                }
            }
        }
        try io.start()
        ioThread = io
        return io
    }

    /// Stops and joins the I/O thread (also done when the VM is released).
    public func stopIOThread() {
        ioThread?.stop()
    }

    deinit { ioThread?.stop() }

    /// Kernel parameters announcing the virtio-mmio devices to Linux.
    public var virtioKernelParameters: [String] {
        virtioDevices.map { VirtioMMIOTransport.kernelParameter(base: $0.base, irq: $0.irq) }
    }

    /// Runs the VM until the guest stops it or `timeoutNanoseconds` pass: vCPU 0 on this thread,
    /// the others on threads started here and joined before returning. The first vCPU (or
    /// device) that ends the VM decides the result; the others are kicked out of KVM_RUN.
    public func run(timeoutNanoseconds: UInt64 = 5_000_000_000) throws(KvmError) -> VMStop {
        _ = try KvmError.check(ckvm_install_kick_handler(), "install vCPU kick signal handler")
        var timer: timer_t? = nil
        _ = try KvmError.check(ckvm_thread_timer_start(&timer, timeoutNanoseconds, 10_000_000), "timer_create")
        defer { if let timer { ckvm_thread_timer_stop(timer) } }
        let deadline = Clock.monotonic() + timeoutNanoseconds
        runEnd.reset()
        exitCount = 0
        firstExitAt = nil
        var others: [NativeThread] = []
        defer {
            if !others.isEmpty {
                endRun(.stopped(nil))   // no-op when a vCPU already ended the run
                for t in others { t.join() }
            }
        }
        for index in vcpus.indices.dropFirst() {
            others.append(try NativeThread(name: "vmm-vcpu\(index)") { [self] in
                do throws(KvmError) {
                    _ = try KvmError.check(ckvm_install_kick_handler(), "unblock the vCPU kick signal")
                    try runLoop(index, deadline: nil)
                } catch {
                    endRun(.vcpuFailed(vcpu: index, error: error.description))
                }
            })
        }
        do { try runLoop(0, deadline: deadline) } catch {
            endRun(.vcpuFailed(vcpu: 0, error: error.description))
            throw error
        }
        return runEnd.stop ?? .stopped(nil)
    }

    /// Records why the VM stops (first caller wins) and kicks every vCPU out of KVM_RUN.
    func endRun(_ stop: VMStop) {
        if runEnd.finish(stop) { kicker.kickAll() }
    }

    /// One vCPU's exit loop; returns when the run ends (by this vCPU, another, or the host).
    func runLoop(_ index: Int, deadline: UInt64?) throws(KvmError) {
        let vcpu = vcpus[index]
        kicker.enter(index)
        defer { kicker.leave(index) }
        while true {
            if kicker.stopRequested { return endRun(.stopped(try? VcpuSnapshot(vcpu))) }
            if runEnd.isEnding { return }
            let exit = try vcpu.runOnce()
            if index == 0 {
                if firstExitAt == nil { firstExitAt = Clock.monotonic() }
                exitCount += 1
            }
            if let stop = try handle(exit, vcpu: vcpu, deadline: deadline) { return endRun(stop) }
        }
    }

    func handle(_ exit: VcpuExit, vcpu: Vcpu, deadline: UInt64?) throws(KvmError) -> VMStop? {
        switch exit {
        case .io(let port, let size, let count, let isWrite, let data):
            portLock.withLock {
                for i in 0..<count {
                    let p = data + i * size
                    if isWrite { portIO.write(UInt64(port), from: UnsafeRawBufferPointer(start: p, count: size)) }
                    else { portIO.read(UInt64(port), into: UnsafeMutableRawBufferPointer(start: p, count: size)) }
                    if runEnd.isEnding { break }
                }
            }
            return nil
        case .mmio(let address, let length, let isWrite, let data):
            if isWrite { mmio.write(address, from: UnsafeRawBufferPointer(start: data, count: length)) }
            else { mmio.read(address, into: UnsafeMutableRawBufferPointer(start: data, count: length)) }
            return nil
        case .interrupted:
            if kicker.stopRequested { return .stopped(try? VcpuSnapshot(vcpu)) }
            if let deadline, Clock.monotonic() >= deadline { return .timeout(try? VcpuSnapshot(vcpu)) }
            return nil
        case .hlt: return .halted(try? VcpuSnapshot(vcpu))
        case .shutdown: return .shutdown(try? VcpuSnapshot(vcpu))
        case .systemEvent(let type, _):
            return type == UInt32(KVM_SYSTEM_EVENT_RESET) ? .reset : .systemEvent(type: type)
        case .internalError(let sub, let data):
            return .internalError(InternalErrorReport(suberror: sub, data: data, vcpu: vcpu, memory: memory))
        case .failEntry(let reason): return .failEntry(reason: reason, try? VcpuSnapshot(vcpu))
        case .other(let reason): return .unhandledExit(reason: reason, try? VcpuSnapshot(vcpu))
        }
    }
}

/// The shared end of one `MicroVM.run`: the first stop recorded wins; `isEnding` tells every
/// vCPU loop to return.
final class RunEnd: @unchecked Sendable {
    let lock = DeviceLock()
    let ending = Atomic<Bool>(false)
    private var first: VMStop?

    var isEnding: Bool { ending.load(ordering: .acquiring) }
    var stop: VMStop? { lock.withLock { first } }

    /// Records `stop` unless one is already recorded; true if this call ended the run.
    func finish(_ stop: VMStop) -> Bool {
        lock.withLock {
            guard first == nil else { return false }
            first = stop
            ending.store(true, ordering: .releasing)
            return true
        }
    }

    func reset() {
        lock.withLock {
            first = nil
            ending.store(false, ordering: .releasing)
        }
    }
}
