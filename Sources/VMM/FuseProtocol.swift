/// FUSE wire protocol numbers (include/uapi/linux/fuse.h), the subset this server speaks.
public enum FuseOpcode: UInt32, Sendable {
    case lookup = 1, forget = 2, getattr = 3, setattr = 4, readlink = 5, symlink = 6, mknod = 8, mkdir = 9
    case unlink = 10, rmdir = 11, rename = 12, link = 13, open = 14, read = 15, write = 16, statfs = 17
    case release = 18, fsync = 20, setxattr = 21, getxattr = 22, listxattr = 23, removexattr = 24
    case flush = 25, initialize = 26, opendir = 27, readdir = 28, releasedir = 29, fsyncdir = 30
    case getlk = 31, setlk = 32, setlkw = 33, access = 34, create = 35, interrupt = 36, bmap = 37
    case destroy = 38, ioctl = 39, poll = 40, batchForget = 42, fallocate = 43, readdirplus = 44
    case rename2 = 45, lseek = 46, copyFileRange = 47, syncfs = 50, tmpfile = 51
}

public enum Fuse {
    public static let kernelVersion: UInt32 = 7
    /// The newest minor this server implements; the session uses min(this, the guest's).
    public static let kernelMinorVersion: UInt32 = 31
    /// Oldest minor accepted: 7.12 fixed the layouts of every structure used here.
    public static let minimumMinorVersion: UInt32 = 12
    public static let rootID: UInt64 = 1
    public static let inHeaderSize = 40
    public static let outHeaderSize = 16
    public static let attrSize = 88
    public static let entryOutSize = 40 + attrSize
    public static let direntHeaderSize = 24
    public static let nameMax = 255

    /// INIT flags.
    public enum InitFlag {
        public static let asyncRead: UInt32 = 1 << 0
        public static let atomicOTrunc: UInt32 = 1 << 3
        public static let bigWrites: UInt32 = 1 << 5
        public static let doReaddirplus: UInt32 = 1 << 13
        public static let readdirplusAuto: UInt32 = 1 << 14
        public static let parallelDirops: UInt32 = 1 << 18
        public static let maxPages: UInt32 = 1 << 22
    }

    /// SETATTR `valid` bits.
    public enum SetattrValid {
        public static let mode: UInt32 = 1 << 0, uid: UInt32 = 1 << 1, gid: UInt32 = 1 << 2, size: UInt32 = 1 << 3
        public static let atime: UInt32 = 1 << 4, mtime: UInt32 = 1 << 5, fh: UInt32 = 1 << 6
        public static let atimeNow: UInt32 = 1 << 7, mtimeNow: UInt32 = 1 << 8, lockOwner: UInt32 = 1 << 9
        public static let ctime: UInt32 = 1 << 10, killSUIDGID: UInt32 = 1 << 11
    }

    /// `getattr_flags`: the request carries a file handle.
    public static let getattrFH: UInt32 = 1 << 0
}
