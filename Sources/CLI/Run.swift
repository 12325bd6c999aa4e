#if canImport(Glibc)
import Glibc
#endif
import Agent
import HostRuntime

/// `run`: create + start, then (unless --detach) wait for the container, forwarding
/// signals sent to us, and exit with its status.
enum Run {
    static func run(_ ctx: Context, id: String, bundleDir: String, pidFile: String?, detach: Bool, keep: Bool,
                    consoleSocket: String?, preserveFDs: Int = 0) throws(RuntimeError) -> Int32 {
        // Block before the keeper exists so no signal slips between create and the wait.
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH] { sigaddset(&set, s) }
        if !detach { sigprocmask(SIG_BLOCK, &set, nil) }
        let keeper = try Lifecycle.create(ctx, id: id, bundleDir: bundleDir, pidFile: pidFile, detach: detach,
                                          consoleSocket: consoleSocket, preserveFDs: preserveFDs)
        // The keeper holds the preserved fds now; our copies would hide their end from readers.
        for fd in PreservedFDs.numbers(preserveFDs) { close(fd) }
        do {
            try Lifecycle.start(ctx, id: id)
        } catch {
            try? Lifecycle.delete(ctx, id: id, force: true)
            if !detach { reap(keeper) }
            throw error
        }
        if detach { return 0 }
        let code = wait(keeper, signals: &set)
        if !keep { try? Lifecycle.delete(ctx, id: id, force: true) }
        return code
    }

    static func wait(_ keeper: pid_t, signals set: inout sigset_t) -> Int32 {
        while true {
            var st: Int32 = 0
            let r = waitpid(keeper, &st, WNOHANG)
            if r == keeper { return Posix.exitCode(fromWaitStatus: st) }
            if r < 0 && errno != EINTR { return 255 }
            var info = siginfo_t()
            var ts = timespec(tv_sec: 1, tv_nsec: 0)
            let sig = sigtimedwait(&set, &info, &ts)
            guard sig > 0, sig != SIGCHLD else { continue }
            // Terminal-generated signals (SI_KERNEL) already reached the keeper in our process group.
            if info.si_code == 0x80 { continue }
            Glibc.kill(keeper, sig)
        }
    }

    static func reap(_ pid: pid_t) {
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
    }
}
