#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims

/// A process the agent relays: the container's init or an exec'd process. Its output
/// comes from pipes, or from one pty master when it has a terminal.
final class GuestProcess {
    let pid: pid_t
    let stream: UInt32
    var stdin: Int32       // write end (or a dup of the pty master); -1 once closed
    var stdout: Int32      // read end (or the pty master); -1 at end of file
    var stderr: Int32      // -1 with a terminal
    var terminal: Int32    // the pty master, for resizes; -1 without a terminal
    var stdinQueue: [UInt8] = []
    var stdinEOF = false
    var waitStatus: Int32?
    var exitSent = false
    var started = true
    /// Relays of its preserved fds (3, 4, ...), and the addresses of its listening ones.
    var ends: [StreamEnd] = []
    var listeners: [UInt8: [UInt8]] = [:]

    init(pid: pid_t, stream: UInt32, stdin: Int32, stdout: Int32, stderr: Int32, terminal: Int32) {
        self.pid = pid; self.stream = stream; self.stdin = stdin; self.stdout = stdout
        self.stderr = stderr; self.terminal = terminal
        for fd in [stdin, stdout, stderr] where fd >= 0 { Posix.setNonblocking(fd) }
    }

    func closeAll() {
        for fd in [stdin, stdout, stderr] where fd >= 0 { close(fd) }
        if terminal >= 0 && terminal != stdout { close(terminal) }
        stdin = -1; stdout = -1; stderr = -1; terminal = -1
    }
}

/// The pipes a new process gets, and how its creator learns the outcome: a socketpair that
/// carries "R" (ready, with the pty master attached when there is one) or "E<message>".
struct SpawnChannels {
    var stdin: (read: Int32, write: Int32)
    var stdout: (read: Int32, write: Int32)
    var stderr: (read: Int32, write: Int32)
    var sync: (parent: Int32, child: Int32)

    /// `preserving` fds will be installed as 3, 4, ... before execve: the sync socket, which
    /// reports an execve failure after that, lives above them.
    static func make(preserving count: Int = 0) throws(SetupError) -> SpawnChannels {
        let i: (read: Int32, write: Int32), o: (read: Int32, write: Int32), e: (read: Int32, write: Int32)
        do { i = try Posix.pipe(); o = try Posix.pipe(); e = try Posix.pipe() } catch { throw SetupError("\(error)") }
        var sv: [Int32] = [0, 0]
        if socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) != 0 {
            for fd in [i.read, i.write, o.read, o.write, e.read, e.write] { close(fd) }
            throw .sys("socketpair")
        }
        let base = PreservedObjects.base(count)
        do {
            sv[0] = try PreservedObjects.moveAbove(sv[0], base)
            sv[1] = try PreservedObjects.moveAbove(sv[1], base)
        } catch {
            for fd in [i.read, i.write, o.read, o.write, e.read, e.write] + sv where fd >= 0 { close(fd) }
            throw error
        }
        return SpawnChannels(stdin: i, stdout: o, stderr: e, sync: (sv[0], sv[1]))
    }

    /// In the child: stdio onto the pipes (a terminal replaces them later), parent ends closed.
    func adoptInChild() {
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)  // the agent's blocked SIGCHLD must not reach the process
        dup2(stdin.read, 0); dup2(stdout.write, 1); dup2(stderr.write, 2)
        for fd in [stdin.read, stdin.write, stdout.read, stdout.write, stderr.read, stderr.write, sync.parent] { close(fd) }
    }

    func report(_ s: String, fd: Int32 = -1) {
        let bytes = Array(s.utf8)
        if fd >= 0 { _ = bytes.withUnsafeBytes { kata_send_fd(sync.child, fd, $0.baseAddress, $0.count) } }
        else { try? Posix.writeAll(sync.child, bytes) }
    }

    /// In the parent after fork: keep our ends; returns the child's first report.
    func collect() -> (message: [UInt8], fd: Int32) {
        for fd in [stdin.read, stdout.write, stderr.write, sync.child] { close(fd) }
        var buf = [UInt8](repeating: 0, count: 4096)
        var fd: Int32 = -1
        let n = buf.withUnsafeMutableBytes { kata_recv_fd(sync.parent, $0.baseAddress, 4096, &fd) }
        var msg = n > 0 ? Array(buf[0..<Int(n)]) : []
        if msg.first == UInt8(ascii: "E") { msg += (try? Posix.readToEnd(sync.parent, limit: 65536)) ?? [] }
        return (msg, fd)
    }

    func closeParentEnds() {
        for fd in [stdin.write, stdout.read, stderr.read, sync.parent] { close(fd) }
    }

    /// The relayed process once the child reported ready.
    func process(pid: pid_t, stream: UInt32, master: Int32) -> GuestProcess {
        if master >= 0 {
            for fd in [stdin.write, stdout.read, stderr.read] { close(fd) }
            return GuestProcess(pid: pid, stream: stream, stdin: dup(master), stdout: master, stderr: -1, terminal: master)
        }
        return GuestProcess(pid: pid, stream: stream, stdin: stdin.write, stdout: stdout.read, stderr: stderr.read, terminal: -1)
    }
}
