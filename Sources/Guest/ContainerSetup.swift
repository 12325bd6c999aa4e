#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import OCI
import SyscallFilter

/// Builds the container's world inside the current (forked) process: namespaces,
/// mounts, pivot_root, hostname, rlimits; then, on start, user and execve.
/// Runs in a single-threaded child, so plain Swift is safe between fork and exec.
public struct ContainerSetup {
    public let spec: Spec
    public let process: OCI.Process
    public let rootfs: String
    public let binds: [BindMap]
    /// linux.seccomp as a BPF program, loaded by the init and every exec'd process.
    public let seccomp: SeccompProgram?
    /// The interfaces and routes the host found in the container's network namespace.
    public let network: NetworkConfig
    /// In the guest the VM holds this one container, so the VM's own network, UTS and IPC
    /// namespaces serve as the container's (as in Kata): making fresh ones (and moving the
    /// network devices into them) runs thousands of blocks of kernel code that TCG must
    /// translate, ~20 ms per container before networking and 70-90 ms with a device to
    /// move. Off on the host (the tests), where sharing would change the host's hostname.
    public let vmOwnsNamespaces: Bool

    /// `compiled`: the filter the host compiled from this spec's linux.seccomp; without it
    /// (or if the host could not), it is compiled here, in the parent, before the fork.
    public init(spec: Spec, rootfs: String, binds: [BindMap], compiled: SeccompProgram? = nil,
                network: NetworkConfig = NetworkConfig(), vmOwnsNamespaces: Bool = false) throws(SetupError) {
        guard let p = spec.process else { throw SetupError("config.json has no process") }
        self.spec = spec; self.process = p; self.rootfs = rootfs; self.binds = binds
        self.network = network; self.vmOwnsNamespaces = vmOwnsNamespaces
        if let s = spec.linux.seccomp, compiled == nil {
            GuestInit.trace("seccomp: compiling \(s.syscalls.reduce(0) { $0 + $1.names.count }) syscall names")
            do { seccomp = try SeccompFilter.compile(s) } catch { throw SetupError(error.description) }
            GuestInit.trace("seccomp: \(seccomp!.instructions.count) BPF instructions")
        } else {
            seccomp = spec.linux.seccomp == nil ? nil : compiled
            if let c = seccomp { GuestInit.trace("seccomp: \(c.instructions.count) BPF instructions compiled by the host") }
        }
    }

    /// Namespace types the VM's own namespaces stand in for (see `vmOwnsNamespaces`).
    static let sharedWithVM: Set<String> = ["network", "uts", "ipc"]

    /// Everything up to the point where only execve is left. Returns the executable path.
    public func prepare() throws(SetupError) -> String {
        GuestInit.trace("setup: child running")
        try unshareNamespaces()
        GuestInit.trace("setup: namespaces")
        try setupRootfs()
        GuestInit.trace("setup: rootfs")
        try launcher.applyLimits()
        let exe = try launcher.lookupExecutable()
        GuestInit.trace("setup: executable \(exe)")
        return exe
    }

    func unshareNamespaces() throws(SetupError) {
        var flags: Int32 = 0
        for ns in spec.linux.namespaces where ns.type != "pid" && ns.type != "user" && ns.type != "time" {
            if vmOwnsNamespaces && Self.sharedWithVM.contains(ns.type) { continue }
            flags |= Namespaces.flags[ns.type] ?? 0
        }
        if spec.linux.has("user") { throw SetupError("user namespaces are not supported yet") }
        let net = try GuestNetwork(network)  // the devices are in the VM's namespace: look before leaving it
        if flags != 0 && kata_unshare(flags) != 0 { throw .sys("unshare namespaces") }
        // A new network namespace starts with lo down; runc brings it up. The VM's starts
        // down too, and a container without its own namespace expects the host's, lo up.
        if (vmOwnsNamespaces || spec.linux.has("network")) && kata_loopback_up() != 0 { throw .sys("bring up lo") }
        try net?.configure(newNamespace: spec.linux.has("network") && !vmOwnsNamespaces)
        if spec.linux.has("uts") {
            if let h = spec.hostname, kata_sethostname(h) != 0 { throw .sys("sethostname \(h)") }
            if let d = spec.domainname, kata_setdomainname(d) != 0 { throw .sys("setdomainname \(d)") }
        }
    }

    func setupRootfs() throws(SetupError) {
        let hasMountNS = spec.linux.has("mount")
        if hasMountNS {
            var prop = (MS_SLAVE | MS_REC)
            if let p = spec.linux.rootfsPropagation, let f = MountOptions.propagations[p] { prop = f }
            if mount("", "/", "", prop, nil) != 0 { throw .sys("make / \(spec.linux.rootfsPropagation ?? "rslave")") }
        }
        // pivot_root needs the new root to be a mount point.
        if mount(rootfs, rootfs, "", (MS_BIND | MS_REC), nil) != 0 { throw .sys("bind rootfs \(rootfs)") }
        var devIsTmpfs = false
        for m in spec.mounts {
            try mountOne(m)
            if m.destination == "/dev" && !m.isBind { devIsTmpfs = true }
        }
        if devIsTmpfs { try Devices.createDefaults(rootfs + "/dev") }
        for d in spec.linux.devices { try Devices.create(d, under: rootfs) }
        GuestInit.trace("setup: mounts and devices")
        if hasMountNS {
            if chdir(rootfs) != 0 { throw .sys("chdir \(rootfs)") }
            if kata_pivot_root(".", ".") != 0 { throw .sys("pivot_root") }
            if umount2(".", MNT_DETACH) != 0 { throw .sys("unmount old root") }
            if chdir("/") != 0 { throw .sys("chdir /") }
        } else {
            if chroot(rootfs) != 0 || chdir("/") != 0 { throw .sys("chroot \(rootfs)") }
        }
        // sysctls first: /proc/sys is usually among the read-only paths (runc's order too).
        for (k, v) in spec.linux.sysctl {
            let path = "/proc/sys/" + k.replacingOccurrences(".", "/")
            do { try Posix.writeFileAtomicInPlace(path, Array(v.utf8)) } catch { throw SetupError("sysctl \(k): \(error)") }
        }
        for p in spec.linux.maskedPaths { try mask(p) }
        for p in spec.linux.readonlyPaths { try readonly(p) }
        if spec.root?.readonly == true {
            if mount("", "/", "", (MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC), nil) != 0 { throw .sys("remount / read-only") }
        }
    }

    /// Where a bind source lives in the guest: the host shared it under the shared directory.
    func guestSource(_ m: Spec.Mount) throws(SetupError) -> String {
        let src = m.source ?? ""
        if let b = binds.first(where: { $0.source == src }) { return b.guestPath }
        throw SetupError("bind mount source \(src) for \(m.destination) was not shared with the VM")
    }

    func mountOne(_ m: Spec.Mount) throws(SetupError) {
        let opts = MountOptions(m.options)
        let dest = try SecureJoin.join(rootfs, m.destination)
        let type = m.type ?? (opts.bind ? "bind" : "none")
        if m.isBind {
            let src = try guestSource(m)
            var st = stat()
            if stat(src, &st) != 0 { throw .sys("bind mount source \(m.source ?? "")") }
            try ensure(dest, directory: (st.st_mode & S_IFMT) == S_IFDIR)
            var f = (MS_BIND)
            if opts.recursive { f |= (MS_REC) }
            if mount(src, dest, "", f, nil) != 0 { throw .sys("bind mount \(m.source ?? "") on \(m.destination)") }
            let remount = opts.flags & ~(MS_REMOUNT)
            if remount != 0 && mount("", dest, "", (MS_REMOUNT | MS_BIND) | remount, nil) != 0 {
                throw .sys("remount \(m.destination) with \(m.options.joined(separator: ","))")
            }
        } else {
            try ensure(dest, directory: true)
            var fstype = type
            if type == "cgroup" { fstype = "cgroup2" }  // the guest kernel runs the unified hierarchy
            let data = opts.dataString
            let r = data.isEmpty ? mount(m.source ?? type, dest, fstype, opts.flags, nil)
                                 : mount(m.source ?? type, dest, fstype, opts.flags, data)
            if r != 0 {
                if type == "cgroup" { return }  // optional in a VM: a missing controller must not fail the container
                throw .sys("mount \(type) on \(m.destination)")
            }
        }
        for p in opts.propagation where mount("", dest, "", p, nil) != 0 {
            throw .sys("set propagation of \(m.destination)")
        }
    }

    func ensure(_ path: String, directory: Bool) throws(SetupError) {
        if Posix.exists(path) { return }
        if directory {
            do { try Posix.mkdirAll(path) } catch { throw SetupError("create mount point \(path): \(error)") }
        } else {
            let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
            do { try Posix.mkdirAll(parent) } catch { throw SetupError("create mount point \(path): \(error)") }
            let fd = kata_open_mode(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
            if fd < 0 { throw .sys("create mount point \(path)") }
            close(fd)
        }
    }

    func mask(_ p: String) throws(SetupError) {
        var st = stat()
        guard stat(p, &st) == 0 else { return }
        let r = (st.st_mode & S_IFMT) == S_IFDIR ? mount("tmpfs", p, "tmpfs", (MS_RDONLY), nil)
                                                 : mount("/dev/null", p, "", (MS_BIND), nil)
        if r != 0 { throw .sys("mask \(p)") }
    }

    func readonly(_ p: String) throws(SetupError) {
        guard Posix.exists(p) else { return }
        if mount(p, p, "", (MS_BIND | MS_REC), nil) != 0 { throw .sys("bind \(p) read-only") }
        if mount("", p, "", (MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC), nil) != 0 { throw .sys("remount \(p) read-only") }
    }

    var launcher: ProcessLauncher { ProcessLauncher(process: process, seccomp: seccomp) }

    public func lookupExecutable() throws(SetupError) -> String { try launcher.lookupExecutable() }
    /// Drops privileges (user, capabilities, no_new_privs, seccomp) and replaces this process.
    public func exec(_ executable: String) -> SetupError { launcher.exec(executable) }
}

extension String {
    func replacingOccurrences(_ a: Character, _ b: Character) -> String { String(map { $0 == a ? b : $0 }) }
}
