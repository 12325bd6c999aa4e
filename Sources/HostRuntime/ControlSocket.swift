#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims

/// The keeper's control socket: one request line, one reply line ("ok ..." or "error ...").
/// Reached through /proc/self/fd/N/ so long --root paths do not hit the 108-byte limit.
public enum ControlSocket {
    public static let name = "ctl.sock"

    public static func request(stateDir: String, _ line: String, timeoutMs: Int32 = 120_000) throws(RuntimeError) -> String {
        let dfd = open(stateDir, 0o10000000 | O_DIRECTORY | O_CLOEXEC)
        if dfd < 0 { throw RuntimeError("state directory \(stateDir): \(String(cString: strerror(errno)))") }
        defer { close(dfd) }
        let fd = kata_unix_connect("/proc/self/fd/\(dfd)/\(name)")
        if fd < 0 { throw RuntimeError("cannot reach the container's keeper: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        do { try Posix.writeAll(fd, Array((line + "\n").utf8)) } catch { throw RuntimeError("keeper: \(error)") }
        var reply: [UInt8] = []
        while !reply.contains(UInt8(ascii: "\n")) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, timeoutMs) == 0 { throw RuntimeError("keeper did not answer \"\(line)\"") }
            guard let c = try? Posix.readSome(fd), !c.isEmpty else { break }
            reply += c
        }
        let text = String(decoding: reply, as: UTF8.self).trimmingNewlines
        if text.hasPrefix("ok") { return String(text.dropFirst(2)).trimmed }
        if text.hasPrefix("error ") { throw RuntimeError(String(text.dropFirst(6))) }
        throw RuntimeError("keeper closed the connection")
    }
}

extension String {
    var trimmingNewlines: String { var s = self; while s.hasSuffix("\n") { s.removeLast() }; return s }
}
