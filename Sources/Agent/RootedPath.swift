#if canImport(Glibc)
import Glibc
#endif

/// Resolves a path under `root` as if `root` were `/`: symlinks (absolute ones re-rooted) and
/// `..` never leave it. Used for mount destinations in the guest and the face's view on the host.
public enum RootedPath {
    /// nil when symlinks loop (the kernel's ELOOP limit): keeping such a link as a plain
    /// component would let the kernel follow it out of the root.
    public static func resolve(_ root: String, _ path: String) -> String? {
        var resolved: [String] = []
        var pending = path.split(separator: "/").map(String.init)
        var links = 0
        while !pending.isEmpty {
            let c = pending.removeFirst()
            if c == "." || c.isEmpty { continue }
            if c == ".." { _ = resolved.popLast(); continue }
            let full = root + "/" + (resolved + [c]).joined(separator: "/")
            var buf = [CChar](repeating: 0, count: 4096)
            let n = readlink(full, &buf, buf.count - 1)
            if n > 0 {
                links += 1
                if links > 40 { return nil }
                let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if target.hasPrefix("/") { resolved = [] }
                pending = target.split(separator: "/").map(String.init) + pending
                continue
            }
            resolved.append(c)
        }
        let trimmedRoot = root.hasSuffix("/") ? String(root.dropLast()) : root
        return trimmedRoot + "/" + resolved.joined(separator: "/")
    }
}
