#if canImport(Glibc)
import Glibc
#endif
import CKVM

/// The host directory a FUSE server exports, reached only through file descriptors so that no
/// request can name anything outside it:
/// - every node is an O_PATH descriptor obtained one component at a time from the root's
///   descriptor with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) and
///   O_NOFOLLOW, so a symlink is opened as itself and never followed (an absolute symlink or a
///   `..` chain is just text the guest resolves in its own namespace);
/// - names from the guest are single components: not empty, no '/', not "." or "..";
/// - creating operations (mkdirat, symlinkat, linkat, renameat2, unlinkat, openat2 with O_CREAT |
///   O_NOFOLLOW) take a parent descriptor and such a name, so they cannot follow a symlink either;
/// - by default a lookup does not step onto another mount (a host bind mount placed inside the
///   directory, e.g. of /, stays out of reach);
/// - only regular files and directories are ever opened for I/O; a device node, FIFO or socket in
///   the tree is never opened on the host (the guest handles those itself).
final class ConfinedTree {
    let rootPath: String
    let rootFD: Int32
    /// O_PATH descriptor of /proc/self/fd, for reopening a node's O_PATH descriptor with real
    /// access modes (the magic link refers to exactly that inode); -1 when /proc is missing.
    let procFDs: Int32

    static let atEmptyPath = Int32(CKVM_AT_EMPTY_PATH)
    static let lookupResolve = UInt64(CKVM_RESOLVE_BENEATH | CKVM_RESOLVE_NO_SYMLINKS | CKVM_RESOLVE_NO_MAGICLINKS)
    /// Lookups also refuse to step onto another mount (RESOLVE_NO_XDEV) unless mounts are allowed.
    let resolve: UInt64
    static let pathFlags = UInt64(CKVM_O_PATH) | UInt64(O_NOFOLLOW | O_CLOEXEC)

    init(root: String, crossMounts: Bool = false) throws(KvmError) {
        resolve = ConfinedTree.lookupResolve | (crossMounts ? 0 : UInt64(CKVM_RESOLVE_NO_XDEV))
        let fd = ckvm_openat2(AT_FDCWD, root, UInt64(CKVM_O_PATH) | UInt64(O_DIRECTORY | O_CLOEXEC), 0, 0)
        if fd < 0 { throw .syscall("open shared directory \(root)", errno: errno) }
        rootPath = root
        rootFD = fd
        procFDs = ckvm_openat2(AT_FDCWD, "/proc/self/fd", UInt64(CKVM_O_PATH) | UInt64(O_DIRECTORY | O_CLOEXEC), 0, 0)
    }

    deinit {
        close(rootFD)
        if procFDs >= 0 { close(procFDs) }
    }

    /// Runs `body` with the guest's `name` as a C string once it is checked to be a single
    /// component (names need not be UTF-8).
    static func withName<R>(_ name: [UInt8], _ body: (UnsafePointer<CChar>) throws(FuseError) -> R) throws(FuseError) -> R {
        guard !name.isEmpty, name != [0x2e], name != [0x2e, 0x2e] else { throw .invalid }
        guard name.count <= Fuse.nameMax else { throw FuseError(ENAMETOOLONG) }
        guard !name.contains(0x2f), !name.contains(0) else { throw .invalid }
        let c = (name + [0]).map { CChar(bitPattern: $0) }
        return try c.withUnsafeBufferPointer { (p) throws(FuseError) -> R in try body(p.baseAddress!) }
    }

    /// O_PATH descriptor of `name` inside directory `dir`; a symlink is opened as itself.
    func openNode(in dir: Int32, name: [UInt8]) throws(FuseError) -> Int32 {
        try ConfinedTree.withName(name) { (n) throws(FuseError) -> Int32 in
            let fd = ckvm_openat2(dir, n, ConfinedTree.pathFlags, 0, resolve)
            if fd < 0 { throw .last }
            return fd
        }
    }

    /// lstat of a node descriptor.
    func stat(_ fd: Int32) throws(FuseError) -> stat {
        var st = Glibc.stat()
        if fstatat(fd, "", &st, ConfinedTree.atEmptyPath | AT_SYMLINK_NOFOLLOW) < 0 { throw .last }
        return st
    }

    /// Flags a guest may open a file with; everything else (O_CREAT, O_DIRECT, O_PATH, ...) is
    /// dropped, O_NOCTTY and O_CLOEXEC are added.
    static let allowedOpenFlags = O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK | O_DSYNC | O_SYNC | Int32(CKVM_O_NOATIME)

    static func openFlags(_ guest: UInt32) -> UInt64 {
        UInt64(UInt32(bitPattern: Int32(bitPattern: guest) & allowedOpenFlags)) | UInt64(O_CLOEXEC | O_NOCTTY)
    }

    /// A real descriptor for node `fd` of file type `type`: directories through "." beneath
    /// themselves, regular files through /proc/self/fd. Anything else is refused.
    func reopen(_ fd: Int32, type: mode_t, flags: UInt64) throws(FuseError) -> Int32 {
        let out: Int32
        switch type {
        case S_IFDIR:
            out = ckvm_openat2(fd, ".", UInt64(O_RDONLY | O_DIRECTORY | O_CLOEXEC), 0, ConfinedTree.lookupResolve)
        case S_IFREG:
            guard procFDs >= 0 else { throw .denied }
            out = ckvm_openat2(procFDs, String(fd), flags & ~UInt64(O_DIRECTORY), 0, 0)
        case S_IFLNK:
            throw FuseError(ELOOP)
        default:
            throw FuseError(ENXIO)
        }
        if out < 0 { throw .last }
        return out
    }

    /// The "/proc/self/fd/N" name of a node, for the *at calls that act on the inode itself
    /// (chmod, utimes); only used for regular files and directories, never symlinks.
    func withProcName<R>(_ fd: Int32, type: mode_t, _ body: (Int32, String) throws(FuseError) -> R) throws(FuseError) -> R {
        guard type == S_IFREG || type == S_IFDIR else { throw FuseError(EOPNOTSUPP) }
        guard procFDs >= 0 else { throw .denied }
        return try body(procFDs, String(fd))
    }
}
