#if canImport(Glibc)
import Glibc
#endif
import CShims

/// A failed system call, with the errno text: "open /x: No such file or directory".
public struct SysError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: Int32
    public init(_ call: String, _ e: Int32 = Glibc.errno) { self.call = call; errno = e }
    public var description: String { "\(call): \(String(cString: strerror(errno)))" }
}

public enum Posix {
    /// Retries on EINTR; throws on any other failure.
    @discardableResult
    public static func check(_ what: @autoclosure () -> String, _ f: () -> Int32) throws(SysError) -> Int32 {
        while true {
            let r = f()
            if r >= 0 { return r }
            if errno != EINTR { throw SysError(what()) }
        }
    }

    public static func writeAll(_ fd: Int32, _ bytes: some Collection<UInt8>) throws(SysError) {
        let arr = Array(bytes)
        var off = 0
        while off < arr.count {
            let n = arr.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, arr.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0); _ = poll(&p, 1, -1); continue }
                throw SysError("write")
            }
            off += n
        }
    }

    /// One read; [] at end of file, nil when it would block.
    public static func readSome(_ fd: Int32, max: Int = 65536) throws(SysError) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: max)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, max) }
            if n >= 0 { buf.removeSubrange(n...); return buf }
            if errno == EINTR { continue }
            if errno == EAGAIN { return nil }
            throw SysError("read")
        }
    }

    public static func readFile(_ path: String) throws(SysError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SysError("open \(path)") }
        defer { close(fd) }
        var out: [UInt8] = []
        while let chunk = try readSome(fd), !chunk.isEmpty { out += chunk }
        return out
    }

    /// Writes through a temporary file and rename, so readers never see half a file.
    public static func writeFileAtomic(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(SysError) {
        let tmp = path + ".tmp"
        let fd = kata_open_mode(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        if fd < 0 { throw SysError("open \(tmp)") }
        do { try writeAll(fd, bytes) } catch { close(fd); unlink(tmp); throw error }
        close(fd)
        if rename(tmp, path) != 0 { let e = SysError("rename \(path)"); unlink(tmp); throw e }
    }

    public static func setNonblocking(_ fd: Int32, _ on: Bool = true) {
        let fl = kata_fcntl_int(fd, F_GETFL, 0)
        _ = kata_fcntl_int(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK)
    }

    public static func setCloexec(_ fd: Int32, _ on: Bool = true) {
        _ = kata_fcntl_int(fd, F_SETFD, on ? FD_CLOEXEC : 0)
    }

    public static func pipe(cloexec: Bool = true) throws(SysError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        if kata_pipe2(&fds, cloexec ? Int32(O_CLOEXEC) : 0) != 0 { throw SysError("pipe") }
        return (fds[0], fds[1])
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p.
    public static func mkdirAll(_ path: String, mode: mode_t = 0o755) throws(SysError) {
        if isDirectory(path) { return }
        var cur = path.hasPrefix("/") ? "" : "."
        for comp in path.split(separator: "/") {
            cur += "/" + comp
            if mkdir(cur, mode) != 0 && errno != EEXIST { throw SysError("mkdir \(cur)") }
        }
    }

    /// rm -rf without following symlinks out of the tree.
    public static func removeAll(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            if let d = opendir(path) {
                var names: [String] = []
                while let e = readdir(d) {
                    let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(d)
                for n in names { removeAll(path + "/" + n) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    public static func listDirectory(_ path: String) -> [String] {
        guard let d = opendir(path) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// "Exit status as a shell reports it": 128+signal for a signal death, as runc.
    public static func exitCode(fromWaitStatus s: Int32) -> Int32 {
        if kata_wifexited(s) != 0 { return kata_wexitstatus(s) }
        if kata_wifsignaled(s) != 0 { return 128 + kata_wtermsig(s) }
        return 255
    }

    public static func cString(_ strings: [String]) -> [UnsafeMutablePointer<CChar>?] {
        strings.map { strdup($0) } + [nil]
    }
}

extension Posix {
    /// Writes an existing file in place (for /proc and /sys files, which cannot be renamed over).
    public static func writeFileAtomicInPlace(_ path: String, _ bytes: [UInt8]) throws(SysError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw SysError("open \(path)") }
        defer { close(fd) }
        try writeAll(fd, bytes)
    }
}

extension Posix {
    /// Reads until end of file, or `limit` bytes.
    public static func readToEnd(_ fd: Int32, limit: Int = Int.max) throws(SysError) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < limit, let c = try readSome(fd, max: Swift.min(65536, limit - out.count)), !c.isEmpty { out += c }
        return out
    }
}

extension String {
    /// Without trailing newlines (and spaces): file contents and reply lines.
    public var trimmingTrailingNewlines: String {
        var s = Substring(self)
        while let l = s.last, l == "\n" || l == " " || l == "\r\n" { s.removeLast() }
        return String(s)
    }
}
