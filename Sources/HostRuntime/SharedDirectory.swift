#if canImport(Glibc)
import Glibc
#endif
import Agent

/// The per-container directory exported to the guest. Bind mounts into it live only in
/// virtiofsd's private mount namespace; removal still refuses to run while anything is
/// mounted below it in our namespace, so a bind that survived can never lose user files.
public enum SharedDirectory {
    @discardableResult
    public static func remove(_ path: String) -> Bool {
        let path = normalize(path)
        guard Posix.exists(path) else { return true }
        if !mountPoints(under: path).isEmpty { return false }
        var top = stat()
        guard lstat(path, &top) == 0 else { return true }
        removeTree(path, device: top.st_dev)
        return true
    }

    /// "/a//b/./c/" -> "/a/b/c", so the mount-point comparison cannot be sidestepped.
    static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for c in path.split(separator: "/") where c != "." {
            if c == ".." { _ = parts.popLast() } else { parts.append(c) }
        }
        return (path.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
    }

    /// rm -rf that never leaves the filesystem it started on (a second line of defence).
    static func removeTree(_ path: String, device: dev_t) {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_dev == device else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for n in Posix.listDirectory(path) { removeTree(path + "/" + n, device: device) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Mount points at or below `path` in this process's mount namespace.
    public static func mountPoints(under path: String) -> [String] {
        guard let bytes = try? Posix.readFile("/proc/self/mountinfo") else { return [] }
        var out: [String] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count > 4 else { continue }
            let mp = unescape(String(f[4]))
            if mp == path || mp.hasPrefix(path + "/") { out.append(mp) }
        }
        return out
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo.
    static func unescape(_ s: String) -> String {
        var out = ""
        var it = Array(s.utf8)[...]
        var bytes: [UInt8] = []
        while let c = it.first {
            if c == UInt8(ascii: "\\"), it.count >= 4, let v = UInt8(String(decoding: it.dropFirst().prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(v); it = it.dropFirst(4)
            } else { bytes.append(c); it = it.dropFirst() }
        }
        out = String(decoding: bytes, as: UTF8.self)
        return out
    }
}
