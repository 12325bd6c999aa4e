#if canImport(Glibc)
import Glibc
#endif

/// Host `stat`/`statvfs` results in FUSE's wire layouts.
enum FuseAttributes {
    /// `struct fuse_attr` (88 bytes).
    static func attr(_ st: stat, into b: inout LittleEndianBytes) {
        b.u64(UInt64(st.st_ino))
        b.u64(UInt64(max(0, st.st_size)))
        b.u64(UInt64(max(0, st.st_blocks)))
        b.u64(UInt64(bitPattern: Int64(st.st_atim.tv_sec)))
        b.u64(UInt64(bitPattern: Int64(st.st_mtim.tv_sec)))
        b.u64(UInt64(bitPattern: Int64(st.st_ctim.tv_sec)))
        b.u32(UInt32(truncatingIfNeeded: st.st_atim.tv_nsec))
        b.u32(UInt32(truncatingIfNeeded: st.st_mtim.tv_nsec))
        b.u32(UInt32(truncatingIfNeeded: st.st_ctim.tv_nsec))
        b.u32(st.st_mode)
        b.u32(UInt32(truncatingIfNeeded: st.st_nlink))
        b.u32(st.st_uid)
        b.u32(st.st_gid)
        b.u32(UInt32(truncatingIfNeeded: st.st_rdev))
        b.u32(UInt32(truncatingIfNeeded: st.st_blksize))
        b.u32(0)
    }

    /// `struct fuse_entry_out` (128 bytes); node 0 means "no entry" (readdirplus of . and ..).
    static func entry(node: UInt64, _ st: stat?, validSeconds: UInt64, into b: inout LittleEndianBytes) {
        b.u64(node)
        b.u64(0)                      // generation: node ids are never reused
        b.u64(node == 0 ? 0 : validSeconds)
        b.u64(node == 0 ? 0 : validSeconds)
        b.u32(0); b.u32(0)
        if let st { attr(st, into: &b) } else { b.zeros(Fuse.attrSize) }
    }

    /// `struct fuse_attr_out`.
    static func attrOut(_ st: stat, validSeconds: UInt64) -> [UInt8] {
        var b = LittleEndianBytes(capacity: 16 + Fuse.attrSize)
        b.u64(validSeconds); b.u32(0); b.u32(0)
        attr(st, into: &b)
        return b.bytes
    }

    /// `struct fuse_kstatfs` (80 bytes).
    static func statfs(_ s: statvfs) -> [UInt8] {
        var b = LittleEndianBytes(capacity: 80)
        b.u64(UInt64(s.f_blocks)); b.u64(UInt64(s.f_bfree)); b.u64(UInt64(s.f_bavail))
        b.u64(UInt64(s.f_files)); b.u64(UInt64(s.f_ffree))
        b.u32(UInt32(truncatingIfNeeded: s.f_bsize)); b.u32(UInt32(truncatingIfNeeded: s.f_namemax))
        b.u32(UInt32(truncatingIfNeeded: s.f_frsize)); b.u32(0)
        b.zeros(24)
        return b.bytes
    }

    static func fileType(_ mode: mode_t) -> mode_t { mode & S_IFMT }
}
