#if canImport(Glibc)
import Glibc
#endif

/// Joins `path` under `root` resolving symlinks and `..` as if `root` were `/`,
/// so a hostile rootfs cannot point a mount destination outside itself.
public enum SecureJoin {
    public static func join(_ root: String, _ path: String) throws(SetupError) -> String {
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
                // Like the kernel's ELOOP: past the limit the path has no meaning, and keeping
                // the link as a plain component would let the kernel follow it out of the root.
                links += 1
                if links > 40 { throw SetupError("\(path): too many levels of symbolic links in the rootfs") }
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
