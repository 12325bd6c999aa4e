#if canImport(Glibc)
import Glibc
#endif
import Agent
import OCI

/// An OCI bundle on the host: config.json and the rootfs it names, checked up front so
/// that bad input fails before anything is started.
public struct Bundle: Sendable {
    public let path: String
    public let configBytes: [UInt8]
    public let spec: Spec
    public let rootfs: String

    public static func load(_ dir: String, requireProcess: Bool = true) throws(RuntimeError) -> Bundle {
        guard let abs = realPath(dir) else {
            throw RuntimeError("bundle \(dir): \(String(cString: strerror(errno)))")
        }
        guard Posix.isDirectory(abs) else { throw RuntimeError("bundle \(dir) is not a directory") }
        let configPath = abs + "/config.json"
        let bytes: [UInt8]
        do { bytes = try Posix.readFile(configPath) } catch {
            throw RuntimeError(error.errno == ENOENT ? "config.json not found in bundle \(abs)" : "read \(configPath): \(error)")
        }
        let spec: Spec
        do { spec = try SpecParser.parse(bytes, file: configPath) } catch { throw RuntimeError(error.message) }
        if requireProcess {
            guard spec.process != nil else { throw RuntimeError("\(configPath): process is required") }
        }
        guard let root = spec.root else { throw RuntimeError("\(configPath): root.path is required") }
        let rootPath = root.path.hasPrefix("/") ? root.path : abs + "/" + root.path
        guard Posix.isDirectory(rootPath) else { throw RuntimeError("rootfs \(rootPath) does not exist or is not a directory") }
        return Bundle(path: abs, configBytes: bytes, spec: spec, rootfs: realPath(rootPath) ?? rootPath)
    }

    /// Host paths the guest needs and where they appear in the shared directory:
    /// the rootfs, then each bind-mount source.
    public func shares(sharedDir: String, guestDir: String) throws(RuntimeError) -> (host: [(source: String, target: String)], guest: [BindMap]) {
        var host: [(String, String)] = [(rootfs, sharedDir + "/rootfs")]
        var guest: [BindMap] = []
        for (i, m) in spec.mounts.enumerated() where m.isBind {
            guard let src = m.source, !src.isEmpty else { throw RuntimeError("bind mount on \(m.destination) has no source") }
            let abs = src.hasPrefix("/") ? src : path + "/" + src
            guard Posix.exists(abs) else { throw RuntimeError("mount source \(src) for \(m.destination) does not exist") }
            if guest.contains(where: { $0.source == src }) { continue }
            host.append((abs, sharedDir + "/mounts/\(i)"))
            guest.append(BindMap(source: src, guestPath: guestDir + "/mounts/\(i)"))
        }
        return (host, guest)
    }

    static func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }
}
