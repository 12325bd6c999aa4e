#if canImport(Glibc)
import Glibc
#endif
import Agent

/// The keeper's half of one container process's stdio: input read from `stdin`, output
/// written to `stdout`/`stderr` (the keeper's own fds for the init, fds passed over the
/// control socket for an exec), and who to tell when it exits.
final class Relay {
    let stream: UInt32
    let stdin: Int32
    let stdout: Int32
    let stderr: Int32
    /// Control connection waiting for "exit N" (exec), -1 for the init.
    var waiter: Int32
    var waiterClosed = false
    /// The host process standing for this one (exec's relay), for `ps`.
    var hostPID: Int32?
    var stdinOpen = true
    var started: Bool
    /// The terminal whose size the guest pty follows, and the size last sent.
    let terminal: Int32
    var lastSize: (rows: UInt32, cols: UInt32)?
    var savedMode: termios?
    let ownsFDs: Bool
    /// Relays of the process's preserved fds (3, 4, ...) and its preserved listening sockets.
    var ends: [StreamEnd] = []
    var listeners: [PreservedListener] = []
    /// The exit status the guest reported; passed on once the preserved fds' last bytes are out.
    var exitCode: Int32?

    init(stream: UInt32, stdin: Int32, stdout: Int32, stderr: Int32, waiter: Int32, started: Bool, tty: Bool, ownsFDs: Bool) {
        self.stream = stream; self.stdin = stdin; self.stdout = stdout; self.stderr = stderr
        self.waiter = waiter; self.started = started; self.ownsFDs = ownsFDs
        terminal = tty && isatty(stdout) == 1 ? stdout : -1
        if terminal >= 0 { savedMode = HostTerminal.makeRaw(terminal) }
    }

    /// The terminal's size if it changed since last asked.
    func sizeChange() -> (rows: UInt32, cols: UInt32)? {
        guard terminal >= 0, let s = HostTerminal.size(terminal), s.rows > 0 else { return nil }
        if let l = lastSize, l == s { return nil }
        lastSize = s
        return s
    }

    /// Every preserved fd has delivered its last byte.
    var endsFinished: Bool { ends.allSatisfy { $0.isFinished } }

    func close() {
        for e in ends { e.close() }
        for l in listeners { l.close() }
        if let m = savedMode, terminal >= 0 { HostTerminal.restore(terminal, m) }
        if ownsFDs { for fd in Set([stdin, stdout, stderr]) where fd > 2 { Glibc.close(fd) } }
    }
}
