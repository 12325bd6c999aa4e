#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import OCI

/// The container's init: forked, built by ContainerSetup, parked before execve until start.
final class ContainerProcess {
    let process: GuestProcess
    var startFD: Int32
    var syncFD: Int32

    /// Forks the container process and waits until it is ready for start or failed. The
    /// caller owns `preserved` (and closes the process's ends once this returns).
    init(setup: ContainerSetup, stream: UInt32, cgroup: ContainerCgroup, preserved: PreservedObjects) throws(SetupError) {
        let ch = try SpawnChannels.make(preserving: preserved.container.count)
        let start: (read: Int32, write: Int32)
        do { start = try Posix.pipe() } catch { ch.closeParentEnds(); throw SetupError("\(error)") }
        if setup.spec.linux.has("pid") && kata_unshare(Namespaces.newPID) != 0 {
            throw .sys("unshare pid namespace")
        }
        let (child, inCgroup) = cgroup.fork()
        if child < 0 { throw .sys("fork") }
        if child == 0 {
            ch.adoptInChild()
            close(start.write)
            do {
                if !inCgroup { try cgroup.join() }
                let exe = try setup.prepare()
                let launcher = setup.launcher
                // As runc: the terminal, then user, capabilities and (unless no_new_privs
                // lets it wait) seccomp are all in place before create returns.
                let terminal = try launcher.openTerminal()
                if let (_, slave) = terminal { try Pty.become(slave) }
                try launcher.dropPrivileges()
                GuestInit.trace("setup: privileges dropped")
                ch.report("R", fd: terminal?.0 ?? -1)
                if let (master, _) = terminal { close(master) }
                var b: UInt8 = 0
                guard read(start.read, &b, 1) == 1 else { _exit(1) }
                ch.report("E" + launcher.execve(exe, preserved: preserved).description)
            } catch {
                ch.report("E" + error.description)
            }
            _exit(127)
        }
        close(start.read)
        let (reply, master) = ch.collect()
        if reply.first != UInt8(ascii: "R") {
            let msg = reply.isEmpty ? "container process died during setup" : String(decoding: reply.dropFirst(), as: UTF8.self)
            kill(child, SIGKILL)
            var st: Int32 = 0
            waitpid(child, &st, 0)
            ch.closeParentEnds(); close(start.write)
            if master >= 0 { close(master) }
            throw SetupError(msg)
        }
        process = ch.process(pid: child, stream: stream, master: master)
        process.started = false
        startFD = start.write
        syncFD = ch.sync.parent
    }

    /// Releases the process into execve; fails if execve failed.
    func start() throws(SetupError) {
        guard !process.started else { throw SetupError("container already started") }
        process.started = true
        var b = UInt8(ascii: "S")
        guard write(startFD, &b, 1) == 1 else { throw .sys("start container") }
        close(startFD); startFD = -1
        // The sync socket is close-on-exec: end of file means execve succeeded.
        let reply = (try? Posix.readToEnd(syncFD)) ?? []
        close(syncFD); syncFD = -1
        if reply.first == UInt8(ascii: "E") { throw SetupError(String(decoding: reply.dropFirst(), as: UTF8.self)) }
    }
}
