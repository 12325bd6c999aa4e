#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import Netlink
import OCI

/// The container's face on the host: the --pid-file process. Engines use that PID as if it
/// were the container's init: they reap it, signal it, and enter its namespaces (podman cp
/// joins its mount namespace and copies to "/path"). So it must not stand in the host's
/// filesystem. The face starts the keeper (which needs the host's view for state, hooks and
/// the VM), and once the container exists moves into a private mount namespace rooted at the
/// bundle rootfs plus the container's bind mounts — the same files the guest sees over
/// virtio-fs. It forwards signals to the keeper and exits with the keeper's status.
/// It also holds the container's network namespace on the host (see NetworkNamespace), so
/// docker's network hook, given its PID, configures the container's namespace.
public enum Face {
    static let forwarded: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGALRM]

    /// `keeperArgs` runs the keeper; it reports on the pipe we give it, and we pass that on.
    /// `preserved` (create --preserve-fds) go to the keeper under the same numbers; the face,
    /// which lives as long as the container, keeps no copy (a reader would never see their end).
    public static func run(store: StateStore, id: String, keeperArgs: [String], preserved: [Int32] = [],
                           readyFD: Int32, log: Logger) -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGCHLD)
        for s in forwarded { sigaddset(&set, s) }
        sigprocmask(SIG_BLOCK, &set, nil)
        let sigfd = kata_signalfd(-1, &set)
        Posix.setCloexec(readyFD)

        let bundle: Bundle
        do {
            bundle = try Bundle.load(try store.load(id).bundle)
            // The keeper (and so hooks, taps and the VM) inherit this namespace; engines enter ours.
            if let warning = try NetworkNamespace.enter(bundle.spec) { log.warning(warning) }
        } catch { report(readyFD, "error " + error.description); return 1 }
        guard let pipe = try? Posix.pipe() else { report(readyFD, "error face: cannot create a pipe"); return 1 }
        let keeper = spawn(keeperArgs + [String(pipe.write)], keep: [pipe.write] + preserved)
        close(pipe.write)
        for fd in preserved { close(fd) }
        if keeper < 0 {
            close(pipe.read)
            report(readyFD, "error start keeper: \(String(cString: strerror(-keeper)))")
            return 1
        }
        let reply = (try? Posix.readToEnd(pipe.read)) ?? []
        close(pipe.read)
        let line = String(String(decoding: reply, as: UTF8.self).split(separator: "\n").first ?? "")
        guard line == "ok" else {
            report(readyFD, line.isEmpty ? "error keeper exited during create" : line)
            return waitKeeper(keeper)
        }
        // Read while the state directory is still in view: the interfaces whose ingress the
        // keeper redirected, to undo if it dies without doing so itself.
        let redirected = NetworkPlumbing.readRecord(stateDir: store.directory(id))
        let exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)   // for the stand-in, before the host's view goes
        do { try enterContainerView(bundle) } catch {
            // Safer to fail the create than to leave the engine a host-rooted PID to enter.
            kill(keeper, SIGKILL)
            _ = waitKeeper(keeper)
            report(readyFD, "error " + error.description)
            return 1
        }
        let standIn = bundle.spec.process.map { startStandIn($0, exe: exe, log: log) } ?? (pid: 0, hold: -1)
        if exe >= 0 { close(exe) }
        report(readyFD, "ok")
        while true {
            var p = pollfd(fd: sigfd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, -1)
            var info = signalfd_siginfo()
            while read(sigfd, &info, MemoryLayout<signalfd_siginfo>.size) > 0 {
                let sig = Int32(info.ssi_signo)
                // Terminal-generated signals (SI_KERNEL) reach the keeper in our process group itself.
                if sig != SIGCHLD { if info.ssi_code != 0x80 { kill(keeper, sig) }; continue }
                var st: Int32 = 0
                if standIn.pid > 0 { _ = waitpid(standIn.pid, &st, WNOHANG) }
                if waitpid(keeper, &st, WNOHANG) == keeper {
                    // Reaped here, the stand-in leaves no zombie for whoever inherits orphans.
                    if standIn.pid > 0 { close(standIn.hold); _ = waitpid(standIn.pid, nil, 0) }
                    if !redirected.isEmpty, let s = try? RouteSocket() { NetworkPlumbing.removeRedirects(s, redirected) }
                    return Posix.exitCode(fromWaitStatus: st)
                }
            }
        }
    }

    static func report(_ fd: Int32, _ line: String) {
        guard fd >= 0 else { return }
        try? Posix.writeAll(fd, Array((line + "\n").utf8))
        close(fd)
    }

    static func waitKeeper(_ pid: pid_t) -> Int32 {
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        return Posix.exitCode(fromWaitStatus: st)
    }

    static func spawn(_ args: [String], keep: [Int32]) -> pid_t {
        var s = Spawn(args)
        s.keep = keep
        s.pdeathsig = SIGKILL  // a SIGKILLed face takes the keeper (and so the VM) with it
        return s.run()
    }

    /// The process `podman top` shows for the container (see standin.c): psgo lists /proc in
    /// our mount namespace, where it finds this one process, named and owned like the
    /// container's init; the real processes are in the guest (`kata-runtime top` lists them).
    /// Best effort: without it `podman top` lists nothing. It ends when the face closes the
    /// pipe's write end it is given (or dies).
    static func startStandIn(_ process: Process, exe: Int32, log: Logger) -> (pid: pid_t, hold: Int32) {
        guard let first = process.args.first, exe >= 0 else { return (0, -1) }
        let comm = String(first.split(separator: "/").last ?? Substring(first))
        let argv = process.args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var hold: Int32 = -1
        let pid = kata_stand_in(exe, argv, comm, process.uid, process.gid, &hold)
        if pid < 0 { log.debug("face: no stand-in for podman top: \(String(cString: strerror(-pid)))"); return (0, -1) }
        return (pid, hold)
    }

    /// A private mount namespace whose root is the rootfs with the container's bind mounts.
    static func enterContainerView(_ bundle: Bundle) throws(RuntimeError) {
        let root = bundle.rootfs
        func fail(_ what: String) -> RuntimeError { RuntimeError("face: \(what): \(String(cString: strerror(errno)))") }
        if kata_unshare(0x0002_0000 /* CLONE_NEWNS */) != 0 { throw fail("unshare mount namespace") }
        if mount("", "/", "", UInt(1 << 18 | 16384) /* MS_PRIVATE|MS_REC */, nil) != 0 { throw fail("make / private") }
        if mount(root, root, "", UInt(4096 | 16384) /* MS_BIND|MS_REC */, nil) != 0 { throw fail("bind rootfs") }
        for m in bundle.spec.mounts where m.isBind {
            guard let src = m.source else { continue }
            let abs = src.hasPrefix("/") ? src : bundle.path + "/" + src
            // The guest created the mount points in the shared rootfs; resolve inside it.
            guard let dest = RootedPath.resolve(root, m.destination), Posix.exists(dest) else { continue }
            if mount(abs, dest, "", UInt(4096 | 16384), nil) != 0 { throw fail("bind \(src) on \(m.destination)") }
        }
        if chdir(root) != 0 || kata_pivot_root(".", ".") != 0 { throw fail("pivot_root into the rootfs") }
        if umount2(".", 2 /* MNT_DETACH */) != 0 || chdir("/") != 0 { throw fail("detach the host root") }
    }
}
