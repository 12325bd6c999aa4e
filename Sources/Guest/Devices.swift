#if canImport(Glibc)
import Glibc
#endif
import CShims
import Agent
import OCI

/// The device nodes every container gets, as runc creates them.
public enum Devices {
    static let defaults: [(String, UInt32, UInt32)] = [
        ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
    ]
    static let links: [(String, String)] = [
        ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"), ("core", "/proc/kcore"), ("ptmx", "pts/ptmx"),
    ]

    public static func createDefaults(_ dev: String) throws(SetupError) {
        for (name, major, minor) in defaults {
            try node(dev + "/" + name, mode: S_IFCHR | 0o666, major: major, minor: minor)
        }
        for (name, target) in links {
            let p = dev + "/" + name
            if !Posix.exists(p) { _ = symlink(target, p) }
        }
    }

    public static func create(_ d: Spec.Device, under root: String) throws(SetupError) {
        let type: mode_t
        switch d.type {
        case "c", "u": type = S_IFCHR
        case "b": type = S_IFBLK
        case "p": type = S_IFIFO
        default: throw SetupError("device \(d.path): unknown type \(d.type)")
        }
        let path = try SecureJoin.join(root, d.path)
        let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        try? Posix.mkdirAll(parent)
        try node(path, mode: type | mode_t(d.fileMode ?? 0o666), major: UInt32(d.major), minor: UInt32(d.minor))
        if d.uid != nil || d.gid != nil { _ = chown(path, d.uid ?? 0, d.gid ?? 0) }
    }

    static func node(_ path: String, mode: mode_t, major: UInt32, minor: UInt32) throws(SetupError) {
        unlink(path)
        if mknod(path, mode, kata_makedev(major, minor)) == 0 { _ = chmod(path, mode & 0o7777); return }
        // No mknod (nodev or not permitted): bind the guest's own node instead.
        let fd = kata_open_mode(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o666)
        if fd >= 0 { close(fd) }
        let src = "/dev/" + (path.split(separator: "/").last.map(String.init) ?? "")
        if mount(src, path, "", (MS_BIND), nil) != 0 { throw .sys("create device \(path)") }
    }
}
