#if canImport(Glibc)
import Glibc
#endif
import CShims
import OCI

/// The host network namespace a container's face and keeper live in. Engines set up the
/// container's network there: podman/CNI before create (config.json names the namespace's
/// path), docker's libnetwork-setkey prestart hook during create (it moves the veth into
/// /proc/<state pid>/ns/net). It is never the runtime's own namespace: without a path the
/// face gets a new one, which dies with it.
public enum NetworkNamespace {
    static let cloneNewNet: Int32 = 0x4000_0000

    /// config.json's network namespace path, if it names one.
    public static func path(_ spec: Spec) -> String? {
        guard let p = spec.linux.namespaces.first(where: { $0.type == "network" })?.path, !p.isEmpty else { return nil }
        return p
    }

    /// Moves the calling thread (the face, before it starts the keeper) into the container's
    /// network namespace.
    public static func enter(_ spec: Spec) throws(RuntimeError) {
        guard let path = path(spec) else {
            if kata_unshare(cloneNewNet) != 0 { throw RuntimeError("create a network namespace: \(String(cString: strerror(errno)))") }
            return
        }
        try join(path)
    }

    /// setns into the namespace at `path`, refusing our current one: mirroring the host's own
    /// interfaces into a VM would take the host off its network.
    public static func join(_ path: String) throws(RuntimeError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw RuntimeError("network namespace \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var target = stat(), current = stat()
        if fstat(fd, &target) == 0 && stat("/proc/thread-self/ns/net", &current) == 0
            && target.st_dev == current.st_dev && target.st_ino == current.st_ino {
            throw RuntimeError("network namespace \(path) is the runtime's own (the host's); give the container a namespace of its own")
        }
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
