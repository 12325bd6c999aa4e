#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims

/// The keeper's control socket: one request per connection, replies as lines
/// ("ok ...", "error ...", and for exec later "exit N").
/// Reached through /proc/self/fd/N/ so long --root paths do not hit the 108-byte limit.
public enum ControlSocket {
    public static let name = "ctl.sock"

    public static func connect(stateDir: String) throws(RuntimeError) -> Int32 {
        let dfd = open(stateDir, 0o10000000 | O_DIRECTORY | O_CLOEXEC)  // O_PATH
        if dfd < 0 { throw RuntimeError("state directory \(stateDir): \(String(cString: strerror(errno)))") }
        defer { close(dfd) }
        let fd = kata_unix_connect("/proc/self/fd/\(dfd)/\(name)")
        if fd < 0 { throw RuntimeError("cannot reach the container's keeper: \(String(cString: strerror(errno)))") }
        return fd
    }

    public static func request(stateDir: String, _ line: String, timeoutMs: Int32 = 120_000) throws(RuntimeError) -> String {
        let fd = try connect(stateDir: stateDir)
        defer { close(fd) }
        do { try Posix.writeAll(fd, Array((line + "\n").utf8)) } catch { throw RuntimeError("keeper: \(error)") }
        return try expectOK(fd, what: line, timeoutMs: timeoutMs)
    }

    /// Reads one reply line; nil when the peer closed or `timeoutMs` passed.
    public static func readLine(_ fd: Int32, timeoutMs: Int32) -> String? {
        var line: [UInt8] = []
        var b: UInt8 = 0
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, timeoutMs) <= 0 { return nil }
            let n = read(fd, &b, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            if b == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(b)
        }
    }

    public static func expectOK(_ fd: Int32, what: String, timeoutMs: Int32) throws(RuntimeError) -> String {
        guard let text = readLine(fd, timeoutMs: timeoutMs) else {
            throw RuntimeError("keeper did not answer \"\(what.split(separator: " ").first ?? "")\"")
        }
        if text.hasPrefix("ok") { return String(text.dropFirst(2)).trimmed }
        if text.hasPrefix("error ") { throw RuntimeError(String(text.dropFirst(6))) }
        throw RuntimeError("keeper: unexpected reply \"\(text)\"")
    }

    /// Starts an exec'd process: sends process.json, the three stdio fds and the preserved
    /// ones (--preserve-fds). Returns the connection (which later carries "exit N") and the
    /// process's stream.
    public static func exec(stateDir: String, process: [UInt8], stdio: [Int32], preserved: [Int32] = [],
                            tty: Bool) throws(RuntimeError) -> (conn: Int32, stream: UInt32) {
        let fd = try connect(stateDir: stateDir)
        let header = Array("exec \(process.count) \(tty ? "tty" : "pipe") \(preserved.count)\n".utf8)
        let fds = stdio + preserved
        let r = header.withUnsafeBytes { h in fds.withUnsafeBufferPointer { kata_send_fds(fd, $0.baseAddress, Int32($0.count), h.baseAddress, h.count) } }
        if r != 0 { close(fd); throw RuntimeError("send exec request: \(String(cString: strerror(errno)))") }
        do { try Posix.writeAll(fd, process) } catch { close(fd); throw RuntimeError("send exec request: \(error)") }
        do {
            let s = try expectOK(fd, what: "exec", timeoutMs: 120_000)
            return (fd, UInt32(s) ?? 0)
        } catch { close(fd); throw error }
    }

    /// Waits for the "exit N" line of an exec'd process.
    public static func waitExit(_ conn: Int32, timeoutMs: Int32 = -1) -> Int32? {
        guard let line = readLine(conn, timeoutMs: timeoutMs), line.hasPrefix("exit ") else { return nil }
        return Int32(line.dropFirst(5))
    }
}
