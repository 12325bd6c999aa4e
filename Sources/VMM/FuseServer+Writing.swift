#if canImport(Glibc)
import Glibc
#endif
import CKVM

/// Requests that modify the tree. Each takes a parent directory node and a single-component name,
/// so nothing is created, removed or renamed outside the shared directory and no symlink is followed.
extension FuseServer {
    static let utimeNow = (1 << 30) - 1, utimeOmit = (1 << 30) - 2

    func writable() throws(FuseError) {
        if options.readOnly { throw FuseError(EROFS) }
    }

    func directory(_ id: UInt64) throws(FuseError) -> FuseNodeTable.Node {
        let n = try nodes.node(id)
        guard n.type == S_IFDIR else { throw FuseError(ENOTDIR) }
        return n
    }

    func write(_ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        try writable()
        let fh = try r.u64(), offset = try r.u64(), size = try r.u32()
        try r.skip(20)   // write_flags, lock_owner, flags, padding
        let data = try r.data(Int(size))
        let hd = try handle(fh, directory: false)
        guard offset <= UInt64(Int64.max) else { throw .invalid }
        var done = 0
        while done < data.count {
            let n = data.withUnsafeBytes { pwrite(hd.fd, $0.baseAddress! + done, data.count - done, off_t(offset) + off_t(done)) }
            if n < 0 { if errno == EINTR { continue }; throw .last }
            done += n
        }
        var b = LittleEndianBytes(capacity: 8)
        b.u32(UInt32(done)); b.u32(0)
        return b.bytes
    }

    /// After creating `fd`'s inode: restore permission bits this process's umask removed (the
    /// guest applied its own), and hand it to the requesting guest user.
    func finishCreate(_ id: UInt64, _ st: inout stat, mode: UInt32, _ h: FuseRequestHeader) throws(FuseError) {
        let node = try nodes.node(id)
        let want = mode_t(mode & 0o777)
        if node.type != S_IFLNK, st.st_mode & 0o777 != want {
            try tree.withProcName(node.fd, type: node.type) { (dir, name) throws(FuseError) in
                if fchmodat(dir, name, (st.st_mode & 0o7000) | want, 0) < 0 { throw .last }
            }
        }
        if options.chownNewFiles, st.st_uid != h.uid || st.st_gid != h.gid {
            if fchownat(node.fd, "", h.uid, h.gid, ConfinedTree.atEmptyPath | AT_SYMLINK_NOFOLLOW) < 0 { throw .last }
        }
        st = try tree.stat(node.fd)
    }

    func create(_ h: FuseRequestHeader, _ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        try writable()
        let flags = try r.u32(), mode = try r.u32()
        try r.skip(8)    // umask (already applied by the guest), open_flags
        let name = try r.cString(max: Fuse.nameMax + 1)
        let parent = try directory(h.nodeID)
        guard mode & UInt32(S_IFMT) == 0 || mode & UInt32(S_IFMT) == UInt32(S_IFREG) else { throw .invalid }
        let base = ConfinedTree.openFlags(flags) | UInt64(O_NOFOLLOW)
        let exclusive = Int32(bitPattern: flags) & O_EXCL != 0
        var created = true
        var fd = try ConfinedTree.withName(name) { (n) throws(FuseError) -> Int32 in
            ckvm_openat2(parent.fd, n, base | UInt64(O_CREAT | O_EXCL), UInt64(mode & 0o7777), tree.resolve)
        }
        if fd < 0, errno == EEXIST, !exclusive {
            // It exists after all (another host process): open it as it is, changing nothing.
            created = false
            fd = try ConfinedTree.withName(name) { (n) throws(FuseError) -> Int32 in
                ckvm_openat2(parent.fd, n, base, 0, tree.resolve)
            }
        }
        if fd < 0 { throw .last }
        var opened = stat()
        guard fstat(fd, &opened) == 0, opened.st_mode & S_IFMT == S_IFREG else { close(fd); throw FuseError(EISDIR) }
        var (id, st): (UInt64, stat)
        do {
            (id, st) = try lookup(parent: h.nodeID, name: name)
        } catch { close(fd); throw error }
        guard st.st_ino == opened.st_ino, st.st_dev == opened.st_dev else {
            close(fd); nodes.forget(id, count: 1); throw .io   // replaced between the two opens
        }
        if created {
            do { try finishCreate(id, &st, mode: mode, h) } catch { close(fd); nodes.forget(id, count: 1); throw error }
        }
        let fh: UInt64
        do { fh = try addHandle(fd, directory: false) } catch { nodes.forget(id, count: 1); throw error }
        return entryReply(id, st) + openReply(fh)
    }

    /// Creates with `make(parentFD, name)`, then looks the new entry up and finishes it.
    func make(_ h: FuseRequestHeader, name: [UInt8], mode: UInt32, _ body: (Int32, UnsafePointer<CChar>) -> Int32) throws(FuseError) -> [UInt8] {
        try writable()
        let parent = try directory(h.nodeID)
        try ConfinedTree.withName(name) { (n) throws(FuseError) in
            if body(parent.fd, n) < 0 { throw .last }
        }
        var (id, st) = try lookup(parent: h.nodeID, name: name)
        do { try finishCreate(id, &st, mode: mode, h) } catch { nodes.forget(id, count: 1); throw error }
        return entryReply(id, st)
    }

    func mkdir(_ h: FuseRequestHeader, _ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        let mode = try r.u32()
        _ = try r.u32()
        let name = try r.cString(max: Fuse.nameMax + 1)
        return try make(h, name: name, mode: mode) { Glibc.mkdirat($0, $1, mode_t(mode & 0o7777)) }
    }

    /// Regular files, FIFOs and sockets only: a device node made here would be a host device.
    func mknod(_ h: FuseRequestHeader, _ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        let mode = try r.u32()
        try r.skip(12)   // rdev, umask, padding
        let name = try r.cString(max: Fuse.nameMax + 1)
        let type = mode_t(mode) & S_IFMT
        guard type == S_IFREG || type == S_IFIFO || type == S_IFSOCK else { throw FuseError(EPERM) }
        return try make(h, name: name, mode: mode) { Glibc.mknodat($0, $1, mode_t(mode) & (S_IFMT | 0o7777), 0) }
    }

    /// The target is stored as text and never followed by the server.
    func symlink(_ h: FuseRequestHeader, _ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        let name = try r.cString(max: Fuse.nameMax + 1)
        let target = try r.cString(max: Int(PATH_MAX) - 1)
        guard !target.isEmpty else { throw FuseError(ENOENT) }
        let ctarget = (target + [0]).map { CChar(bitPattern: $0) }
        return try make(h, name: name, mode: 0o777) { dir, n in ctarget.withUnsafeBufferPointer { symlinkat($0.baseAddress!, dir, n) } }
    }

    /// A new name in the tree for a node already in it (never for a directory).
    func link(_ h: FuseRequestHeader, _ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        try writable()
        let old = try nodes.node(try r.u64())
        let name = try r.cString(max: Fuse.nameMax + 1)
        guard old.type != S_IFDIR else { throw FuseError(EPERM) }
        let parent = try directory(h.nodeID)
        try ConfinedTree.withName(name) { (n) throws(FuseError) in
            if linkat(old.fd, "", parent.fd, n, ConfinedTree.atEmptyPath) == 0 { return }
            // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; without it, name the inode via /proc.
            guard errno == ENOENT, old.type != S_IFLNK, tree.procFDs >= 0 else { throw .last }
            if linkat(tree.procFDs, String(old.fd), parent.fd, n, AT_SYMLINK_FOLLOW) < 0 { throw .last }
        }
        let (id, st) = try lookup(parent: h.nodeID, name: name)
        return entryReply(id, st)
    }

    func remove(_ h: FuseRequestHeader, _ r: inout FuseReader, directory isDir: Bool) throws(FuseError) -> [UInt8] {
        try writable()
        let name = try r.cString(max: Fuse.nameMax + 1)
        let parent = try directory(h.nodeID)
        try ConfinedTree.withName(name) { (n) throws(FuseError) in
            if unlinkat(parent.fd, n, isDir ? AT_REMOVEDIR : 0) < 0 { throw .last }
        }
        return []
    }

    func rename(_ h: FuseRequestHeader, _ r: inout FuseReader, flags hasFlags: Bool) throws(FuseError) -> [UInt8] {
        try writable()
        let newDir = try r.u64()
        var flags: UInt32 = 0
        if hasFlags { flags = try r.u32(); _ = try r.u32() }
        guard flags & ~UInt32(CKVM_RENAME_NOREPLACE | CKVM_RENAME_EXCHANGE) == 0 else { throw .invalid }
        let oldName = try r.cString(max: Fuse.nameMax + 1), newName = try r.cString(max: Fuse.nameMax + 1)
        let from = try directory(h.nodeID), to = try directory(newDir)
        try ConfinedTree.withName(oldName) { (o) throws(FuseError) in
            try ConfinedTree.withName(newName) { (n) throws(FuseError) in
                if ckvm_renameat2(from.fd, o, to.fd, n, flags) < 0 { throw .last }
            }
        }
        return []
    }

    func setattr(_ h: FuseRequestHeader, _ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        let valid = try r.u32()
        _ = try r.u32()
        let fh = try r.u64(), size = try r.u64()
        _ = try r.u64()  // lock_owner
        let atime = try r.u64(), mtime = try r.u64()
        _ = try r.u64()  // ctime
        let atimensec = try r.u32(), mtimensec = try r.u32()
        _ = try r.u32()
        let mode = try r.u32()
        _ = try r.u32()
        let uid = try r.u32(), gid = try r.u32()
        typealias V = Fuse.SetattrValid
        let node = try nodes.node(h.nodeID)
        if valid & (V.mode | V.uid | V.gid | V.size | V.atime | V.mtime | V.atimeNow | V.mtimeNow) != 0 { try writable() }

        if valid & V.mode != 0 {
            try tree.withProcName(node.fd, type: node.type) { (dir, name) throws(FuseError) in
                if fchmodat(dir, name, mode_t(mode & 0o7777), 0) < 0 { throw .last }
            }
        }
        if valid & (V.uid | V.gid) != 0 {
            let u = valid & V.uid != 0 ? uid : UInt32.max, g = valid & V.gid != 0 ? gid : UInt32.max
            if fchownat(node.fd, "", u, g, ConfinedTree.atEmptyPath | AT_SYMLINK_NOFOLLOW) < 0 { throw .last }
        }
        if valid & V.size != 0 {
            guard node.type == S_IFREG else { throw node.type == S_IFDIR ? FuseError(EISDIR) : .invalid }
            guard size <= UInt64(Int64.max) else { throw .invalid }
            if valid & V.fh != 0, let hd = handles[fh], !hd.isDirectory {
                if ftruncate(hd.fd, off_t(size)) < 0 { throw .last }
            } else {
                let fd = try tree.reopen(node.fd, type: node.type, flags: UInt64(O_WRONLY | O_CLOEXEC))
                defer { close(fd) }
                if ftruncate(fd, off_t(size)) < 0 { throw .last }
            }
        }
        if valid & (V.atime | V.mtime | V.atimeNow | V.mtimeNow) != 0 {
            func spec(_ set: UInt32, _ now: UInt32, _ s: UInt64, _ ns: UInt32) -> timespec {
                if valid & now != 0 { return timespec(tv_sec: 0, tv_nsec: FuseServer.utimeNow) }
                if valid & set != 0 { return timespec(tv_sec: time_t(Int64(bitPattern: s)), tv_nsec: Int(ns % 1_000_000_000)) }
                return timespec(tv_sec: 0, tv_nsec: FuseServer.utimeOmit)
            }
            let times = [spec(V.atime, V.atimeNow, atime, atimensec), spec(V.mtime, V.mtimeNow, mtime, mtimensec)]
            try tree.withProcName(node.fd, type: node.type) { (dir, name) throws(FuseError) in
                if utimensat(dir, name, times, 0) < 0 { throw .last }
            }
        }
        return FuseAttributes.attrOut(try tree.stat(node.fd), validSeconds: options.cacheSeconds)
    }
}
