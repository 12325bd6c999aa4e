#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import OCI
import SyscallFilter

/// The last steps of starting any container process (the init or an exec'd one), in the
/// child, inside the container: limits, cwd, terminal, executable lookup, user, execve.
struct ProcessLauncher {
    let process: OCI.Process
    /// The container's compiled linux.seccomp, if any (exec'd processes get it too).
    var seccomp: SeccompProgram?

    func applyLimits() throws(SetupError) {
        for r in process.rlimits {
            var l = rlimit(rlim_cur: rlim_t(r.soft), rlim_max: rlim_t(r.hard))
            guard let res = Rlimits.resource(r.type) else { continue }
            if setrlimit(__rlimit_resource_t(UInt32(res)), &l) != 0 { throw .sys("setrlimit \(r.type)") }
        }
        if let adj = process.oomScoreAdj {
            do { try Posix.writeFileAtomicInPlace("/proc/self/oom_score_adj", Array(String(adj).utf8)) }
            catch { throw SetupError("oom_score_adj: \(error)") }
        }
        let cwd = process.cwd
        if !Posix.isDirectory(cwd) { try? Posix.mkdirAll(cwd) }
        if chdir(cwd) != 0 { throw .sys("chdir to cwd \(cwd)") }
    }

    /// PATH lookup as exec.LookPath does, with runc's error text.
    func lookupExecutable() throws(SetupError) -> String {
        let name = process.args[0]
        if name.contains("/") {
            guard access(name, X_OK) == 0 else { throw .sys("exec: \"\(name)\"") }
            return name
        }
        let path = process.env.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) }
            ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in path.split(separator: ":", omittingEmptySubsequences: false) {
            let cand = (dir.isEmpty ? "." : String(dir)) + "/" + name
            var st = stat()
            if stat(cand, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(cand, X_OK) == 0 { return cand }
        }
        throw SetupError("exec: \"\(name)\": executable file not found in $PATH")
    }

    /// Opens the terminal when the process has one; returns (master, slave) or nil.
    func openTerminal() throws(SetupError) -> (Int32, Int32)? {
        guard process.terminal else { return nil }
        return try Pty.open(rows: process.consoleSize?.height ?? 0, cols: process.consoleSize?.width ?? 0)
    }

    /// runc's steps between the container's setup and execve, in runc's order: umask,
    /// no_new_privs, the seccomp filter if it must be loaded while privileged (without
    /// no_new_privs loading needs CAP_SYS_ADMIN), the bounding set, the user (capabilities
    /// kept across setuid), then the capability sets.
    func dropPrivileges() throws(SetupError) {
        if let m = process.umask { umask(mode_t(m)) }
        if process.noNewPrivileges && kata_prctl(38 /* PR_SET_NO_NEW_PRIVS */, 1) != 0 { throw .sys("set no_new_privs") }
        if let seccomp, !process.noNewPrivileges {
            do { try seccomp.load() } catch { throw SetupError(error.description) }
        }
        let caps = CapabilitySets(process.capabilities)
        try caps.applyBounding()
        if kata_prctl(8 /* PR_SET_KEEPCAPS */, 1) != 0 { throw .sys("keep capabilities") }
        var groups = process.additionalGids.map { gid_t($0) }
        if kata_setgroups(groups.count, &groups) != 0 { throw .sys("setgroups") }
        if setgid(process.gid) != 0 { throw .sys("setgid \(process.gid)") }
        if setuid(process.uid) != 0 { throw .sys("setuid \(process.uid)") }
        if kata_prctl(8 /* PR_SET_KEEPCAPS */, 0) != 0 { throw .sys("clear keep capabilities") }
        try caps.apply()
    }

    /// Replaces this process, loading the seccomp filter first when no_new_privs lets it
    /// come last (as few syscalls as possible run under it). `preserved` become fds 3, 4,
    /// ... (runc --preserve-fds): installed only now, after the start pipe has been read,
    /// because they may take the numbers of fds the child used until then. Returns only on failure.
    func execve(_ executable: String, preserved: PreservedObjects = PreservedObjects()) -> SetupError {
        if let e = preserved.install() { return e }
        if let seccomp, process.noNewPrivileges {
            do { try seccomp.load() } catch { return SetupError(error.description) }
        }
        let argv = Posix.cString(process.args)
        let envp = Posix.cString(process.env)
        Glibc.execve(executable, argv, envp)
        return .sys("exec \(executable)")
    }

    /// Both of the above, for a process that has nothing to wait for in between.
    func exec(_ executable: String, preserved: PreservedObjects = PreservedObjects()) -> SetupError {
        do { try dropPrivileges() } catch { return error }
        return execve(executable, preserved: preserved)
    }
}
