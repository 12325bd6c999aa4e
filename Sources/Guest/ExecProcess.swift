#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import OCI
import SyscallFilter

/// `runc exec` inside the guest: a child of the agent that joins the container's
/// namespaces and runs another process there.
enum ExecProcess {
    /// /proc/PID/ns names for the spec's namespace types. The pid namespace needs no setns:
    /// the agent unshared it before forking the init, so every later child of the agent
    /// is born inside it.
    static let nsFiles: [String: String] = ["ipc": "ipc", "uts": "uts", "network": "net", "cgroup": "cgroup", "mount": "mnt"]

    /// The caller owns `preserved` (and closes the process's ends once this returns).
    static func spawn(initPID: pid_t, spec: Spec, process: OCI.Process, seccomp: SeccompProgram?, stream: UInt32,
                      cgroup: ContainerCgroup?, preserved: PreservedObjects) throws(SetupError) -> GuestProcess {
        // runc: a process.json without capabilities gets the container's.
        var process = process
        if process.capabilities == nil { process.capabilities = spec.process?.capabilities }
        // Open every namespace before joining any: after the mount namespace, /proc is the container's.
        var nsFDs: [Int32] = []
        for ns in spec.linux.namespaces {
            guard let file = nsFiles[ns.type] else { continue }
            let fd = open("/proc/\(initPID)/ns/\(file)", O_RDONLY | O_CLOEXEC)
            if fd < 0 { for f in nsFDs { close(f) }; throw .sys("open \(file) namespace of the container") }
            if file == "mnt" { nsFDs.append(fd) } else { nsFDs.insert(fd, at: 0) }
        }
        defer { for f in nsFDs { close(f) } }
        let ch = try SpawnChannels.make(preserving: preserved.container.count)
        let (child, inCgroup) = cgroup?.fork() ?? (kata_fork(), true)
        if child < 0 {
            ch.closeParentEnds()
            throw errno == ENOMEM ? SetupError("container is not running") : .sys("fork")
        }
        if child == 0 {
            ch.adoptInChild()
            do throws(SetupError) {
                if !inCgroup { try cgroup?.join() }  // before the mount namespace hides the guest's /sys/fs/cgroup
                for fd in nsFDs where kata_setns(fd, 0) != 0 { throw SetupError.sys("join container namespace") }
                let launcher = ProcessLauncher(process: process, seccomp: seccomp)
                try launcher.applyLimits()
                let exe = try launcher.lookupExecutable()
                let terminal = try launcher.openTerminal()
                if let (_, slave) = terminal { try Pty.become(slave) }
                try launcher.dropPrivileges()
                ch.report("R", fd: terminal?.0 ?? -1)
                if let (master, _) = terminal { close(master) }
                ch.report("E" + launcher.execve(exe, preserved: preserved).description)
            } catch {
                ch.report("E" + error.description)
            }
            _exit(127)
        }
        let (reply, master) = ch.collect()
        var failure: String? = nil
        if reply.first == UInt8(ascii: "R") {
            // close-on-exec: end of file means execve succeeded.
            let rest = (try? Posix.readToEnd(ch.sync.parent, limit: 65536)) ?? []
            if rest.first == UInt8(ascii: "E") { failure = String(decoding: rest.dropFirst(), as: UTF8.self) }
        } else {
            failure = reply.isEmpty ? "exec'd process died during setup" : String(decoding: reply.dropFirst(), as: UTF8.self)
        }
        if let failure {
            var st: Int32 = 0
            waitpid(child, &st, 0)
            ch.closeParentEnds()
            if master >= 0 { close(master) }
            throw SetupError(failure)
        }
        close(ch.sync.parent)
        return ch.process(pid: child, stream: stream, master: master)
    }
}
