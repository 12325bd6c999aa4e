#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims

/// The external-hypervisor backend: qemu-system-x86_64 -M microvm, with the rootfs
/// shared through virtiofsd and the agent on a virtio-serial port.
public final class QEMU: VirtualMachine {
    public let config: VMConfig
    public let qemuPath: String
    public let virtiofsdPath: String
    public let accel: String
    var qemuPID: pid_t = 0
    var virtiofsdPID: pid_t = 0
    var listenFD: Int32 = -1

    static let agentSocket = "agent.sock"
    static let fsSocket = "vfs.sock"
    static let consoleLog = "console.log"
    static let qemuLog = "qemu.log"
    static let virtiofsdLog = "virtiofsd.log"

    /// `accel`: "kvm" or "tcg" (resolve "auto" with `Accelerator.probe()` first).
    public init(config: VMConfig, qemuPath: String, virtiofsdPath: String, accel: String) {
        self.config = config; self.qemuPath = qemuPath; self.virtiofsdPath = virtiofsdPath; self.accel = accel
    }

    public var processes: [pid_t] { [qemuPID, virtiofsdPID].filter { $0 > 0 } }

    func path(_ name: String) -> String { config.stateDir + "/" + name }

    public func kernelCommandLine() -> String {
        // reboot=t: a guest reset ends QEMU at once (-no-reboot); nolapic_timer and
        // noreplace-smp shave ~0.4 s off a TCG boot (docs/guest-image.md).
        var p = ["console=ttyS0", "panic=-1", "reboot=t", "tsc_early_khz=2000000", "rdinit=/init",
                 "nolapic_timer", "noreplace-smp", "cryptomgr.notests", "8250.nr_uarts=1",
                 // One container per VM: memory limits bound its processes, the VM bounds the
                 // kernel; skipping kernel-memory accounting saves ~600 blocks of TCG work.
                 "cgroup.memory=nokmem"]
        p.append(config.debug ? "kata.debug" : "quiet")
        return (p + config.kernelParams).joined(separator: " ")
    }

    public func arguments() -> [String] {
        let mem = "\(config.memoryMiB)M"
        return [
            // acpi=off makes QEMU list the virtio-mmio devices on the kernel command line;
            // the PIT/PIC/RTC give the guest its timer (without them boot stalls ~1 s).
            qemuPath, "-M", "microvm,acpi=off,pit=on,pic=on,rtc=on,x-option-roms=off,memory-backend=mem",
            "-accel", accel,
        ] + (accel == "kvm" ? ["-cpu", "host"] : []) + [  // TCG: the default qemu64 model is the fastest
            "-m", mem, "-smp", String(config.vcpus),
            "-object", "memory-backend-memfd,id=mem,size=\(mem),share=on",
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-kernel", config.kernel, "-initrd", config.initrd, "-append", kernelCommandLine(),
            "-global", "virtio-mmio.force-legacy=false",
            "-chardev", "file,id=console,path=\(Self.consoleLog)", "-serial", "chardev:console",
            "-chardev", "socket,id=vfs,path=\(Self.fsSocket)",
            "-device", "vhost-user-fs-device,chardev=vfs,tag=\(VMConfig.shareTag)",
            "-device", "virtio-serial-device",
            "-chardev", "socket,id=agent,path=\(Self.agentSocket)",
            "-device", "virtserialport,chardev=agent,name=agent",
            // Entropy at boot: without it the first getrandom() in the guest blocks for seconds.
            "-device", "virtio-rng-device",
        ] + networkArguments()
    }

    /// One virtio-net device per tap; QEMU inherits the tap fds. No vhost-net: the module is
    /// not available on every host (it is not here), and userspace virtio-net needs nothing.
    func networkArguments() -> [String] {
        config.netDevices.enumerated().flatMap { i, n in
            ["-netdev", "tap,id=net\(i),fd=\(n.tapFD),vhost=off",
             "-device", "virtio-net-device,netdev=net\(i),mac=\(n.macText)"]
        }
    }

    public func start() throws(VMError) -> Int32 {
        for f in [config.kernel, config.initrd, qemuPath, virtiofsdPath] where access(f, R_OK) != 0 {
            throw VMError("\(f): \(String(cString: strerror(errno)))")
        }
        // Sockets are named relative to the state directory: docker's state paths are
        // longer than a unix socket address can be.
        if chdir(config.stateDir) != 0 { throw VMError("chdir \(config.stateDir): \(String(cString: strerror(errno)))") }
        try startVirtiofsd()
        listenFD = kata_unix_listen(Self.agentSocket, 1)
        if listenFD < 0 { throw VMError("listen on \(path(Self.agentSocket)): \(String(cString: strerror(errno)))") }
        qemuPID = try spawn(arguments(), log: Self.qemuLog, keep: config.netDevices.map(\.tapFD))
        let deadline = monotonicSeconds() + Double(config.bootTimeoutSeconds)
        while true {
            var p = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 20) > 0 {
                let fd = kata_accept(listenFD)
                if fd >= 0 { close(listenFD); listenFD = -1; return fd }
            }
            if let dead = exited(qemuPID) { throw VMError("qemu exited during boot (\(dead)): \(logTail(Self.qemuLog))") }
            if monotonicSeconds() > deadline { throw VMError("qemu did not connect to the agent socket in \(config.bootTimeoutSeconds)s") }
        }
    }

    /// virtiofsd gets an already-listening socket (--fd): given a path it would also take a
    /// pid-file lock named after that path, which two containers would then share.
    func startVirtiofsd() throws(VMError) {
        let fsListen = kata_unix_listen(Self.fsSocket, 1)
        if fsListen < 0 { throw VMError("listen on \(path(Self.fsSocket)): \(String(cString: strerror(errno)))") }
        defer { close(fsListen) }
        let args = [virtiofsdPath, "--fd=\(fsListen)", "-o", "source=\(config.sharedDir)",
                    "-o", "cache=auto", "-o", "sandbox=chroot", "-o", "no_posix_lock", "-o", "xattr",
                    "--thread-pool-size=1", "-o", "log_level=err", "-o", "announce_submounts"]
        virtiofsdPID = try spawn(args, log: Self.virtiofsdLog, mountNS: true, keep: [fsListen])
    }

    func spawn(_ args: [String], log: String, mountNS: Bool = false, keep: [Int32] = []) throws(VMError) -> pid_t {
        let logFD = kata_open_mode(path(log), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        defer { if logFD >= 0 { close(logFD) } }
        var s = Spawn(args)
        s.stdio = (-1, logFD, logFD)
        s.keep = keep
        s.pdeathsig = SIGKILL  // the VM never outlives its keeper
        s.cwd = config.stateDir
        if mountNS { s.privateBinds = config.binds }
        let pid = s.run()
        if pid < 0 { throw VMError("start \(args[0]): \(String(cString: strerror(-pid)))") }
        return pid
    }

    /// A description of how `pid` ended, or nil while it runs.
    func exited(_ pid: pid_t) -> String? {
        var st: Int32 = 0
        let r = waitpid(pid, &st, WNOHANG)
        if r == 0 { return nil }
        if pid == qemuPID { qemuPID = 0 }
        if pid == virtiofsdPID { virtiofsdPID = 0 }
        if r < 0 { return "lost" }
        return kata_wifexited(st) != 0 ? "status \(kata_wexitstatus(st))" : "signal \(kata_wtermsig(st))"
    }

    public func stop() {
        for pid in [qemuPID, virtiofsdPID] where pid > 0 {
            kill(pid, SIGKILL)
            var st: Int32 = 0
            while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        }
        qemuPID = 0; virtiofsdPID = 0
        if listenFD >= 0 { close(listenFD); listenFD = -1 }
        unlink(path(Self.agentSocket)); unlink(path(Self.fsSocket))
    }

    public func consoleTail() -> String { logTail(Self.consoleLog) }

    func logTail(_ name: String) -> String {
        guard let f = fopen(path(name), "r") else { return "" }
        defer { fclose(f) }
        var lines: [String] = []
        var buf = [CChar](repeating: 0, count: 4096)
        while fgets(&buf, Int32(buf.count), f) != nil {
            lines.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).trimmingTrailingNewlines)
            if lines.count > 5 { lines.removeFirst() }
        }
        return lines.joined(separator: " | ")
    }

    func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

