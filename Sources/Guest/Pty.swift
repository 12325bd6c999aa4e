#if canImport(Glibc)
import Glibc
#endif
import CShims

/// A pseudo-terminal opened from the devpts instance of the caller's /dev (the container's,
/// once the child has pivoted), as runc does, so the slave's name is right inside.
enum Pty {
    static let TIOCGPTN: UInt = 0x8004_5430
    static let TIOCSPTLCK: UInt = 0x4004_5431
    static let TIOCSCTTY: UInt = 0x540E
    static let TIOCSWINSZ: UInt = 0x5414

    /// Opens a master/slave pair; returns (master, slave).
    static func open(rows: UInt32, cols: UInt32) throws(SetupError) -> (Int32, Int32) {
        let master = kata_open_mode("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, 0)
        if master < 0 { throw .sys("open /dev/ptmx") }
        var unlock: Int32 = 0
        var n: UInt32 = 0
        guard kata_ioctl_ptr(master, TIOCSPTLCK, &unlock) == 0, kata_ioctl_ptr(master, TIOCGPTN, &n) == 0 else {
            close(master); throw .sys("unlock pty")
        }
        let slave = kata_open_mode("/dev/pts/\(n)", O_RDWR | O_NOCTTY, 0)
        if slave < 0 { close(master); throw .sys("open /dev/pts/\(n)") }
        if rows > 0 && cols > 0 { resize(master, rows: rows, cols: cols) }
        return (master, slave)
    }

    static func resize(_ fd: Int32, rows: UInt32, cols: UInt32) {
        var ws = winsize(ws_row: UInt16(clamping: rows), ws_col: UInt16(clamping: cols), ws_xpixel: 0, ws_ypixel: 0)
        _ = kata_ioctl_ptr(fd, TIOCSWINSZ, &ws)
    }

    /// In the child: a new session with the slave as controlling terminal and stdio.
    static func become(_ slave: Int32) throws(SetupError) {
        if setsid() < 0 { throw .sys("setsid") }
        if kata_ioctl_ptr(slave, TIOCSCTTY, nil) != 0 { throw .sys("set controlling terminal") }
        for fd: Int32 in 0...2 where dup2(slave, fd) < 0 { throw .sys("dup2 terminal") }
        if slave > 2 { close(slave) }
    }
}
