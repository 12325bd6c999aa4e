import Agent

/// Joins `path` under `root` resolving symlinks and `..` as if `root` were `/`,
/// so a hostile rootfs cannot point a mount destination outside itself.
public enum SecureJoin {
    public static func join(_ root: String, _ path: String) throws(SetupError) -> String {
        guard let p = RootedPath.resolve(root, path) else {
            throw SetupError("\(path): too many levels of symbolic links in the rootfs")
        }
        return p
    }
}
