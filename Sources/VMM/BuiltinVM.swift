#if canImport(Glibc)
import Glibc
#endif
import CKVM
import Hypervisor

/// The built-in backend of `Hypervisor.VirtualMachine`: one `MicroVM` in this process, booting
/// `config.kernel` + `config.initrd` with
/// - virtio-console in multiport mode (`VirtioSerial`, 0xd0000000, IRQ 5) with one port named
///   "agent": the guest finds it exactly as with QEMU's `virtserialport,name=agent`
///   (/sys/class/virtio-ports/*/name), so the same guest image serves both backends. The port's
///   host end is one end of a socketpair, bridged by the I/O thread (`ConsoleSocket`); the other
///   end is what `start()` returns. Bytes written before the guest opens the port wait in the
///   device (as QEMU holds them), so the keeper may send its first request at once.
/// - virtio-fs (tag `VMConfig.shareTag`) over `config.sharedDir`, served by the confined
///   in-process `FuseServer`; virtio-rng;
/// - one virtio-net per `config.netDevices` entry (0xd0003000, IRQ 8 and on), on the keeper's
///   tap with the interface's MAC (`VirtioNet`, polled by the I/O thread through `TapBridge`);
/// - the serial port to `console.log` in `config.stateDir`.
/// Threads: the vCPU thread runs `MicroVM.run`; the I/O thread serves every queue notification
/// (ioeventfd), raises interrupts (irqfd) and moves the agent bytes. `stop()` joins both.
/// There are no host processes (`processes` is empty): the VM has ended when the agent fd reads
/// EOF (the backend shuts its end of the socketpair down when the vCPU stops), and
/// `exitDescription` says why.
public final class BuiltinVM: VirtualMachine, @unchecked Sendable {
    public let config: VMConfig
    public static let consoleLogName = "console.log"

    let lock = DeviceLock()
    var machine: MicroVM?
    var ioThread: IOThread?
    var vcpuThread: NativeThread?
    var bridge: ConsoleSocket?
    var consoleTransport: VirtioMMIOTransport?
    var netBridges: [TapBridge] = []
    var log: SerialLog?
    var hostEnd: Int32 = -1
    /// The private mount namespace holding `config.binds` (-1 without binds).
    var mountNamespaceFD: Int32 = -1
    /// The in-process FUSE server behind virtio-fs (after `start`).
    public private(set) var fileServer: FuseServer?
    var started = false
    var finished = false
    var exit: VMStop?
    var exitText: String?
    /// The console tail before the backend's own "VM stopped" lines.
    var tailAtExit: String?
    /// Where the kernel, initramfs and tables went (after `start`).
    public private(set) var bootLayout: LinuxBootLayout?

    public init(config: VMConfig) { self.config = config }

    public var processes: [pid_t] { [] }

    /// Why the vCPU stopped (nil while it runs).
    public var exitReason: VMStop? { lock.withLock { exit } }
    public var exitDescription: String? { lock.withLock { exitText } }

    /// The kernel command line before the `virtio_mmio.device=` parameters are appended.
    public func kernelCommandLine() -> String {
        // reboot=k: a guest reboot goes through the i8042 and ends the VM; panic=-1 reboots at once.
        // No tsc_early_khz (the QEMU/TCG workaround): on KVM the guest takes the TSC frequency
        // from kvm-clock; a forced 2 GHz made the nested-validation guest mark its TSC unstable.
        var p = ["console=ttyS0", "panic=-1", "reboot=k", "rdinit=/init", "8250.nr_uarts=1",
                 "cgroup.memory=nokmem"]  // as QEMU.kernelCommandLine
        if Kvm.isPVM { p.append("tsc_early_khz=2000000") }
        p.append(config.debug ? "kata.debug" : "quiet")
        return (p + config.kernelParams).joined(separator: " ")
    }

    public func start() throws(VMError) -> Int32 {
        let first = lock.withLock { () -> Bool in
            defer { started = true }
            return !started
        }
        guard first else { throw VMError("built-in VM: start() called twice") }
        do { return try boot() } catch {
            stop()
            throw error
        }
    }

    func boot() throws(VMError) -> Int32 {
        for f in [config.kernel, config.initrd] where access(f, R_OK) != 0 {
            throw VMError("\(f): \(String(cString: strerror(errno)))")
        }
        var step = "console log"
        let agentFD: Int32
        let consoleTransport: VirtioMMIOTransport
        do {
            let log = try SerialLog(path: config.stateDir + "/" + BuiltinVM.consoleLogName)
            self.log = log
            var options = MicroVM.Options()
            options.memorySize = config.memoryMiB << 20
            options.pit = true
            guard (1...MPTable.maxCPUs).contains(config.vcpus) else {
                throw KvmError.invalidConfiguration("\(config.vcpus) vCPUs (1...\(MPTable.maxCPUs))")
            }
            options.vcpuCount = config.vcpus   // vCPU 0 on the vCPU thread, the others on threads of their own
            if Kvm.isPVM { options.hiddenCPUFeatures = CPUFeature.unavailableToEmulator }
            step = "create VM"
            let vm = try MicroVM(options: options)
            machine = vm
            vm.serial.onOutput = { log.append($0) }

            step = "virtio-console"
            let serial = VirtioSerial(portNames: ["agent"])
            consoleTransport = try vm.addVirtio(serial)
            self.consoleTransport = consoleTransport
            step = "virtio-fs over \(config.sharedDir)"
            let server = try makeFileServer()
            fileServer = server
            try vm.addVirtio(try VirtioFS(tag: VMConfig.shareTag, server: server))
            step = "virtio-rng"
            try vm.addVirtio(VirtioRNG())
            var nets: [(VirtioNet, VirtioMMIOTransport)] = []
            for (i, n) in config.netDevices.enumerated() {
                step = "virtio-net \(i) (\(n.macText))"
                try TapBridge.prepareTap(n.tapFD)
                let net = VirtioNet(fd: n.tapFD, mac: n.mac, mtu: UInt16(clamping: n.mtu))
                nets.append((net, try vm.addVirtio(net)))
            }
            step = "load \(config.kernel)"
            bootLayout = try vm.loadLinux(LinuxBootConfig(kernelPath: config.kernel, initrdPath: config.initrd,
                                                          commandLine: kernelCommandLine()))
            step = "agent channel"
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw KvmError.syscall("socketpair", errno: errno)
            }
            hostEnd = pair[1]
            agentFD = pair[0]
            do {
                step = "I/O thread"
                let io = try vm.startIOThread()
                ioThread = io
                bridge = ConsoleSocket(fd: pair[1], transport: consoleTransport, stream: serial.ports[0], ioThread: io)
                netBridges = nets.map { TapBridge(device: $0.0, transport: $0.1, ioThread: io) }
                step = "vCPU thread"
                let hostEnd = pair[1]
                vcpuThread = try NativeThread(name: "vmm-vcpu0") { [self] in
                    var text: String
                    var stop: VMStop?
                    do {
                        stop = try vm.run(timeoutNanoseconds: 1 << 61)
                        text = stop!.description
                    } catch { text = "KVM_RUN failed: \(error)" }
                    let guestTail = log.tail()
                    log.append("\n[kata-runtime builtin VMM] VM stopped: \(text)\n")
                    for (i, b) in netBridges.enumerated() { log.append(Self.trafficLine(i, b)) }
                    log.flush()
                    lock.withLock { exit = stop; exitText = text; tailAtExit = guestTail; finished = true }
                    shutdown(hostEnd, Int32(SHUT_RDWR))   // the agent end reads EOF
                }
            } catch {
                close(agentFD)
                throw error
            }
        } catch {
            throw VMError("built-in VMM: \(step): \(error)")
        }
        do { try waitForAgentPort(consoleTransport) } catch {
            close(agentFD)
            throw error
        }
        return agentFD
    }

    /// The FUSE server over `config.sharedDir`. With binds, it is opened in a private mount
    /// namespace (made by a short-lived thread: unshare(CLONE_NEWNS), mounts made slaves so
    /// nothing propagates back to the host, then the bind mounts) and may cross those mounts; the
    /// namespace lives as long as `mountNamespaceFD`, so the binds vanish with the VM.
    func makeFileServer() throws(KvmError) -> FuseServer {
        if config.binds.isEmpty { return try FuseServer(root: config.sharedDir) }
        final class Result: @unchecked Sendable { var server: FuseServer?; var nsFD: Int32 = -1; var error: KvmError? }
        let r = Result()
        let binds = config.binds.map { ($0.source, $0.target.hasPrefix("/") ? $0.target : config.stateDir + "/" + $0.target) }
        let shared = config.sharedDir
        let t = try NativeThread(name: "vmm-mounts") {
            guard ckvm_private_mount_ns() == 0 else { r.error = .syscall("unshare(CLONE_NEWNS)", errno: errno); return }
            for (source, target) in binds where ckvm_bind_mount(source, target) != 0 {
                r.error = .syscall("bind mount \(source) on \(target)", errno: errno)
                return
            }
            var options = FuseServer.Options()
            options.crossMounts = true
            do { r.server = try FuseServer(root: shared, options: options) } catch { r.error = (error as? KvmError) ?? .invalidConfiguration("\(error)"); return }
            r.nsFD = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC)   // keeps the namespace alive
            if r.nsFD < 0 { r.error = .syscall("open /proc/thread-self/ns/mnt", errno: errno) }
        }
        t.join()
        if let e = r.error { throw e }
        mountNamespaceFD = r.nsFD
        return r.server!
    }

    /// "Connected": the guest's driver has set DRIVER_OK on the console device (QEMU's socket
    /// connects even earlier, at QEMU start). Waiting for this much turns a kernel that dies
    /// early into an error with the console tail instead of a silent agent timeout.
    func waitForAgentPort(_ t: VirtioMMIOTransport) throws(VMError) {
        let deadline = Clock.monotonic() + UInt64(max(config.bootTimeoutSeconds, 1)) * 1_000_000_000
        while !t.lock.withLock({ t.activated }) {
            if let (why, tail) = lock.withLock({ exitText.map { ($0, tailAtExit ?? "") } }) {
                throw VMError("built-in VM stopped during boot: \(why)\nconsole: \(tail)")
            }
            if Clock.monotonic() > deadline {
                throw VMError("built-in VM: the guest did not set up the agent console in \(config.bootTimeoutSeconds)s; console: \(consoleTail())")
            }
            usleep(1000)
        }
    }

    /// Stops the vCPU and I/O threads, joins them and releases the VM and its descriptors (not
    /// the agent fd `start` returned: that is the caller's). Safe to call twice.
    public func stop() {
        if let vm = machine { vm.kicker.requestStop() }
        vcpuThread?.join()
        vcpuThread = nil
        ioThread?.stop()
        ioThread = nil
        if let b = bridge { b.transport.lock.withLock { b.stream.onOutput = nil } }
        bridge = nil
        netBridges = []   // the taps are the keeper's to close
        consoleTransport = nil
        if hostEnd >= 0 { close(hostEnd); hostEnd = -1 }
        machine = nil
        fileServer = nil
        if mountNamespaceFD >= 0 { close(mountNamespaceFD); mountNamespaceFD = -1 }
        log?.close()
    }

    public func consoleTail() -> String { log?.tail() ?? "" }

    /// What a network card moved, for console.log when the VM stops (a container whose network
    /// does not work shows here whether frames got through the device at all).
    static func trafficLine(_ index: Int, _ b: TapBridge) -> String {
        let c = b.transport.lock.withLock { b.device.counters }
        let mac = NetDevice(tapFD: -1, mac: b.device.mac).macText
        return "[kata-runtime builtin VMM] virtio-net \(index) (\(mac)): \(c.framesSent) frames sent, "
            + "\(c.framesReceived) received, dropped \(c.transmitDropped) on send and \(c.receiveDropped) on receive, "
            + "\(c.chainsRejected) chains rejected\n"
    }
}
