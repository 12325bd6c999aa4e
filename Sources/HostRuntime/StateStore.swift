#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import OCI

/// One directory per container under --root, holding state.json, a copy of config.json,
/// the keeper's control socket and the VM's sockets and logs.
public struct StateStore: Sendable {
    public let root: String
    public static let defaultRoot = "/run/kata-runtime"

    public init(root: String) { self.root = root }

    public func directory(_ id: String) -> String { root + "/" + id }

    /// Creates the directory for a new container; fails if the id is taken.
    public func create(_ id: String) throws(RuntimeError) -> String {
        try ContainerID.validate(id)
        do { try Posix.mkdirAll(root, mode: 0o711) } catch { throw RuntimeError("cannot create root \(root): \(error)") }
        let dir = directory(id)
        if mkdir(dir, 0o711) != 0 {
            if errno == EEXIST { throw RuntimeError("container with id exists: \(id)") }
            throw RuntimeError("cannot create \(dir): \(String(cString: strerror(errno)))")
        }
        return dir
    }

    public func load(_ id: String) throws(RuntimeError) -> ContainerState {
        try ContainerID.validate(id)
        guard let bytes = try? Posix.readFile(directory(id) + "/state.json") else {
            throw RuntimeError("container \"\(id)\" does not exist")
        }
        guard let json = try? JSONParser.parse(bytes), let s = ContainerState.load(json) else {
            throw RuntimeError("container \"\(id)\": state file is damaged")
        }
        return s
    }

    public func save(_ s: ContainerState) throws(RuntimeError) {
        do { try Posix.writeFileAtomic(directory(s.id) + "/state.json", Array(JSONWriter.write(s.stored()).utf8)) }
        catch { throw RuntimeError("save state of \(s.id): \(error)") }
    }

    public func remove(_ id: String) { Posix.removeAll(directory(id)) }

    public func list() -> [String] {
        Posix.listDirectory(root).filter { Posix.exists(directory($0) + "/state.json") }
    }

    /// The status as of now: a keeper that is gone means the container stopped.
    public func currentStatus(_ s: ContainerState) -> ContainerState.Status {
        if s.status == .stopped { return .stopped }
        if s.pid > 0 && !ProcessInfo.isAlive(s.pid, startTime: s.pidStartTime) { return .stopped }
        return s.status
    }

    /// An exclusive lock on one container, so two CLI calls on it do not race.
    public func lock(_ id: String) throws(RuntimeError) -> Lock {
        let fd = kata_open_mode(directory(id) + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 { throw RuntimeError("container \"\(id)\" does not exist") }
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        return Lock(fd: fd)
    }

    public final class Lock {
        let fd: Int32
        init(fd: Int32) { self.fd = fd }
        deinit { close(fd) }
    }
}
