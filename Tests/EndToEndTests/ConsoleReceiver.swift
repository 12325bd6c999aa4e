import CShims
import Foundation

/// The receiving end of --console-socket, as containerd's shim or conmon implement it:
/// a unix socket that gets the pty master through SCM_RIGHTS.
final class ConsoleReceiver {
    let path: String
    let listenFD: Int32
    private(set) var master: Int32 = -1

    init(directory: String) throws {
        path = directory + "/console.sock"
        listenFD = kata_unix_listen(path, 1)
        guard listenFD >= 0 else { throw NSError(domain: "console", code: Int(errno)) }
    }

    /// A pty of our own instead of a socket: the master stays here, the slave is returned
    /// to become someone's terminal (run -t with the caller's tty).
    init(ptyIn directory: String) throws {
        path = directory + "/unused.sock"
        listenFD = kata_unix_listen(path, 1)
        master = kata_open_mode("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, 0)
        var unlock: Int32 = 0
        guard master >= 0, kata_ioctl_ptr(master, 0x4004_5431 /* TIOCSPTLCK */, &unlock) == 0 else {
            throw NSError(domain: "pty", code: Int(errno))
        }
    }

    func openSlave() -> Int32 {
        var n: UInt32 = 0
        _ = kata_ioctl_ptr(master, 0x8004_5430 /* TIOCGPTN */, &n)
        return kata_open_mode("/dev/pts/\(n)", O_RDWR | O_NOCTTY, 0)
    }

    deinit {
        if master >= 0 { close(master) }
        close(listenFD)
        unlink(path)
    }

    /// Accepts one connection and takes the fd it carries.
    func receive(timeout: Int32 = 30_000) -> Int32? {
        var p = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
        var ready = poll(&p, 1, timeout)
        while ready < 0 && errno == EINTR { ready = poll(&p, 1, timeout) }  // SIGCHLD from Foundation's Process
        guard ready > 0 else { return nil }
        let conn = kata_accept(listenFD)
        guard conn >= 0 else { return nil }
        defer { close(conn) }
        var buf = [UInt8](repeating: 0, count: 4096)
        var fd: Int32 = -1
        _ = buf.withUnsafeMutableBytes { kata_recv_fd(conn, $0.baseAddress, 4096, &fd) }
        master = fd
        return fd >= 0 ? fd : nil
    }

    func type(_ s: String) { _ = s.withCString { write(master, $0, strlen($0)) } }

    /// Reads the terminal until `text` appears or `timeout` passes; returns what was read.
    func read(until text: String, timeout: TimeInterval = 20) -> String {
        var out = [UInt8]()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var p = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 100) > 0 {
                var buf = [UInt8](repeating: 0, count: 4096)
                let n = Glibc.read(master, &buf, 4096)
                if n <= 0 { break }
                out += buf[0..<n]
                if String(decoding: out, as: UTF8.self).contains(text) { break }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    func resize(rows: UInt16, cols: UInt16) {
        var ws = winsize(ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0)
        _ = kata_ioctl_ptr(master, 0x5414 /* TIOCSWINSZ */, &ws)
    }
}
