#if canImport(Glibc)
import Glibc
#endif
import CShims

/// Host-side terminals. The container's line discipline is the guest pty's; every host
/// tty on the path (a console-socket pty, or the user's terminal for `run -t`) is put in
/// raw mode so bytes pass through unchanged.
public enum HostTerminal {
    static let TIOCGPTN: UInt = 0x8004_5430
    static let TIOCSPTLCK: UInt = 0x4004_5431
    static let TIOCGWINSZ: UInt = 0x5413
    static let TIOCSWINSZ: UInt = 0x5414

    /// A new host pty; returns (master, slave).
    public static func openPair() throws(RuntimeError) -> (master: Int32, slave: Int32) {
        let m = kata_open_mode("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, 0)
        if m < 0 { throw RuntimeError("open /dev/ptmx: \(String(cString: strerror(errno)))") }
        var unlock: Int32 = 0
        var n: UInt32 = 0
        guard kata_ioctl_ptr(m, TIOCSPTLCK, &unlock) == 0, kata_ioctl_ptr(m, TIOCGPTN, &n) == 0 else {
            close(m); throw RuntimeError("unlock pty: \(String(cString: strerror(errno)))")
        }
        let s = kata_open_mode("/dev/pts/\(n)", O_RDWR | O_NOCTTY | O_CLOEXEC, 0)
        if s < 0 { close(m); throw RuntimeError("open /dev/pts/\(n): \(String(cString: strerror(errno)))") }
        return (m, s)
    }

    /// Sends a pty master to a --console-socket listener, as runc does (SCM_RIGHTS).
    public static func sendToConsoleSocket(_ path: String, master: Int32) throws(RuntimeError) {
        let sock = kata_unix_connect(path)
        if sock < 0 { throw RuntimeError("connect to console socket \(path): \(String(cString: strerror(errno)))") }
        defer { close(sock) }
        let name = Array("/dev/ptmx".utf8)
        let r = name.withUnsafeBytes { kata_send_fd(sock, master, $0.baseAddress, $0.count) }
        if r != 0 { throw RuntimeError("send pty to console socket \(path): \(String(cString: strerror(errno)))") }
    }

    /// Raw mode; returns the previous settings to restore, nil if `fd` is not a terminal.
    public static func makeRaw(_ fd: Int32) -> termios? {
        var old = termios()
        guard tcgetattr(fd, &old) == 0 else { return nil }
        var raw = old
        cfmakeraw(&raw)
        tcsetattr(fd, TCSANOW, &raw)
        return old
    }

    public static func restore(_ fd: Int32, _ t: termios) {
        var t = t
        tcsetattr(fd, TCSANOW, &t)
    }

    public static func size(_ fd: Int32) -> (rows: UInt32, cols: UInt32)? {
        var ws = winsize()
        guard kata_ioctl_ptr(fd, TIOCGWINSZ, &ws) == 0 else { return nil }
        return (UInt32(ws.ws_row), UInt32(ws.ws_col))
    }

    public static func setSize(_ fd: Int32, rows: UInt32, cols: UInt32) {
        var ws = winsize(ws_row: UInt16(clamping: rows), ws_col: UInt16(clamping: cols), ws_xpixel: 0, ws_ypixel: 0)
        _ = kata_ioctl_ptr(fd, TIOCSWINSZ, &ws)
    }
}
