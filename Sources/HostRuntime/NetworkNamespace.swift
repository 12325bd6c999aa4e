#if canImport(Glibc)
import Glibc
#endif
import CShims
import OCI

/// The host network namespace a container's face and keeper live in. Engines set up the
/// container's network there: podman/CNI before create (config.json names the namespace's
/// path), docker's libnetwork-setkey prestart hook during create (it moves the veth into
/// /proc/<state pid>/ns/net). It is never the runtime's own namespace: without a path (or
/// with a path to the runtime's own) the face gets a new one, which dies with it.
public enum NetworkNamespace {
    static let cloneNewNet: Int32 = 0x4000_0000

    /// config.json's network namespace path, if it names one.
    public static func path(_ spec: Spec) -> String? {
        guard let p = spec.linux.namespaces.first(where: { $0.type == "network" })?.path, !p.isEmpty else { return nil }
        return p
    }

    /// Moves the calling thread (the face, before it starts the keeper) into the container's
    /// network namespace. A path naming the runtime's own namespace (docker's `--network host`
    /// passes the daemon's) gets a new namespace instead: a VM cannot share the host's network,
    /// and mirroring the host's interfaces into it would take them from the host. Returns a
    /// warning for that case.
    public static func enter(_ spec: Spec) throws(RuntimeError) -> String? {
        if let path = path(spec), try !isCurrent(path) {
            try join(path)
            return nil
        }
        if kata_unshare(cloneNewNet) != 0 { throw RuntimeError("create a network namespace: \(String(cString: strerror(errno)))") }
        return path(spec).map { "network namespace \($0) is the runtime's own (the host's): the container gets a new one with only lo" }
    }

    /// Whether `path` is the calling thread's network namespace.
    static func isCurrent(_ path: String) throws(RuntimeError) -> Bool {
        var target = stat(), current = stat()
        guard stat(path, &target) == 0 else { throw RuntimeError("network namespace \(path): \(String(cString: strerror(errno)))") }
        guard stat("/proc/thread-self/ns/net", &current) == 0 else { return false }
        return target.st_dev == current.st_dev && target.st_ino == current.st_ino
    }

    /// setns into the namespace at `path`, refusing our current one (see `enter`).
    public static func join(_ path: String) throws(RuntimeError) {
        if try isCurrent(path) {
            throw RuntimeError("network namespace \(path) is the runtime's own (the host's); give the container a namespace of its own")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw RuntimeError("network namespace \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        if kata_setns(fd, cloneNewNet) != 0 {
            let why = errno == EINVAL ? "not a network namespace" : String(cString: strerror(errno))
            throw RuntimeError("join network namespace \(path): \(why)")
        }
    }

    /// Runs `body` inside the namespace at `path`, then returns the thread to where it was.
    public static func within(_ path: String, _ body: () -> Void) throws(RuntimeError) {
        let home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        if home < 0 { throw RuntimeError("open /proc/thread-self/ns/net: \(String(cString: strerror(errno)))") }
        defer { close(home) }
        try join(path)
        body()
        if kata_setns(home, cloneNewNet) != 0 { throw RuntimeError("return to the runtime's network namespace: \(String(cString: strerror(errno)))") }
    }
}
