#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import OCI

/// The container's init process as the guest agent sees it: forked, set up, parked
/// before execve until start, with its stdio on pipes the agent relays.
final class ContainerProcess {
    let pid: pid_t
    let stream: UInt32
    var stdin: Int32       // write end; -1 once closed
    var stdout: Int32      // read ends; -1 once at end of file
    var stderr: Int32
    var stdinQueue: [UInt8] = []
    var stdinEOF = false
    var startFD: Int32
    var syncFD: Int32
    var waitStatus: Int32?
    var exitSent = false
    var started = false

    /// Forks the container process and waits until it is ready for start or failed.
    init(setup: ContainerSetup, stream: UInt32) throws(SetupError) {
        let pipes: [(read: Int32, write: Int32)]
        do { pipes = try (0..<5).map { _ throws(SysError) in try Posix.pipe() } } catch { throw SetupError("\(error)") }
        let (inR, inW) = pipes[0], (outR, outW) = pipes[1], (errR, errW) = pipes[2]
        let (syncR, syncW) = pipes[3], (startR, startW) = pipes[4]
        if setup.spec.linux.has("pid") && kata_unshare(Namespaces.newPID) != 0 {
            for p in pipes { close(p.read); close(p.write) }
            throw .sys("unshare pid namespace")
        }
        let child = kata_fork()
        if child < 0 { throw .sys("fork") }
        if child == 0 {
            // Child: the agent's blocked signal mask must not reach the container.
            var none = sigset_t()
            sigemptyset(&none)
            sigprocmask(SIG_SETMASK, &none, nil)
            // stdio onto the pipes, build the container, wait for start.
            dup2(inR, 0); dup2(outW, 1); dup2(errW, 2)
            for fd in [inR, inW, outR, outW, errR, errW, syncR, startW] { close(fd) }
            func report(_ s: String) { try? Posix.writeAll(syncW, Array(s.utf8)) }
            do {
                let exe = try setup.prepare()
                report("R")
                var b: UInt8 = 0
                guard read(startR, &b, 1) == 1 else { _exit(1) }
                let err = setup.exec(exe)
                report("E" + err.description)
            } catch {
                report("E" + error.description)
            }
            _exit(127)
        }
        for fd in [inR, outW, errW, syncW, startR] { close(fd) }
        pid = child; self.stream = stream
        stdin = inW; stdout = outR; stderr = errR; syncFD = syncR; startFD = startW
        for fd in [inW, outR, errR] { Posix.setNonblocking(fd) }
        var reply = (try? Posix.readFile(syncR, until: 1)) ?? []
        if reply.first != UInt8(ascii: "R") {
            reply += (try? Posix.readFile(syncR, until: 65536)) ?? []
            let msg = reply.isEmpty ? "container process died during setup" : String(decoding: reply.dropFirst(), as: UTF8.self)
            kill(child, SIGKILL)
            var st: Int32 = 0
            waitpid(child, &st, 0)
            for fd in [inW, outR, errR, syncR, startW] { close(fd) }
            throw SetupError(msg)
        }
    }

    /// Releases the process into execve; fails if execve failed.
    func start() throws(SetupError) {
        guard !started else { throw SetupError("container already started") }
        started = true
        var b = UInt8(ascii: "S")
        guard write(startFD, &b, 1) == 1 else { throw .sys("start container") }
        close(startFD); startFD = -1
        // The sync pipe is close-on-exec: end of file means execve succeeded.
        let reply = (try? Posix.readFile(syncFD, until: Int.max)) ?? []
        close(syncFD); syncFD = -1
        if reply.first == UInt8(ascii: "E") { throw SetupError(String(decoding: reply.dropFirst(), as: UTF8.self)) }
    }
}

extension Posix {
    /// Reads until end of file or `limit` bytes.
    static func readFile(_ fd: Int32, until limit: Int) throws(SysError) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < limit, let c = try readSome(fd, max: Swift.min(4096, limit - out.count)), !c.isEmpty { out += c }
        return out
    }
}
