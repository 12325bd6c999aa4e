#if canImport(Glibc)
import Glibc
#endif
import CKVM

/// Requests that only read: attributes, symlinks, opening, reading files and directories.
extension FuseServer {
    /// Largest READ answered at once, whatever the guest asks for.
    static let readLimit = 1 << 20

    func getattr(_ h: FuseRequestHeader, _ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        let flags = try r.u32()
        _ = try r.u32()
        let fh = try r.u64()
        let node = try nodes.node(h.nodeID)
        var st = try tree.stat(node.fd)
        if flags & Fuse.getattrFH != 0, let hd = handles[fh], fstat(hd.fd, &st) < 0 { throw .last }
        return FuseAttributes.attrOut(st, validSeconds: options.cacheSeconds)
    }

    func readlink(_ h: FuseRequestHeader) throws(FuseError) -> [UInt8] {
        let node = try nodes.node(h.nodeID)
        guard node.type == S_IFLNK else { throw .invalid }
        var buf = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let n = buf.withUnsafeMutableBytes { readlinkat(node.fd, "", $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
        if n < 0 { throw .last }
        return Array(buf.prefix(n))
    }

    func open(_ h: FuseRequestHeader, _ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        let flags = try r.u32()
        let node = try nodes.node(h.nodeID)
        if node.type == S_IFDIR { throw FuseError(EISDIR) }
        let access = Int32(bitPattern: flags) & O_ACCMODE
        if options.readOnly, access != O_RDONLY || Int32(bitPattern: flags) & O_TRUNC != 0 { throw FuseError(EROFS) }
        let fd = try tree.reopen(node.fd, type: node.type, flags: ConfinedTree.openFlags(flags))
        return openReply(try addHandle(fd, directory: false))
    }

    func openReply(_ fh: UInt64) -> [UInt8] {
        var b = LittleEndianBytes(capacity: 16)
        b.u64(fh); b.u32(0); b.u32(0)
        return b.bytes
    }

    func opendir(_ h: FuseRequestHeader) throws(FuseError) -> [UInt8] {
        let node = try nodes.node(h.nodeID)
        guard node.type == S_IFDIR else { throw FuseError(ENOTDIR) }
        let fd = try tree.reopen(node.fd, type: S_IFDIR, flags: 0)
        return openReply(try addHandle(fd, directory: true))
    }

    func read(_ r: inout FuseReader, room: Int) throws(FuseError) -> [UInt8] {
        let fh = try r.u64(), offset = try r.u64(), size = try r.u32()
        let hd = try handle(fh, directory: false)
        guard offset <= UInt64(Int64.max) else { throw .invalid }
        let n = min(Int(size), room, FuseServer.readLimit)
        var buf = [UInt8](repeating: 0, count: n)
        var done = 0
        while done < n {
            let got = buf.withUnsafeMutableBytes { pread(hd.fd, $0.baseAddress! + done, n - done, off_t(offset) + off_t(done)) }
            if got < 0 { if errno == EINTR { continue }; throw .last }
            if got == 0 { break }
            done += got
        }
        return Array(buf.prefix(done))
    }

    func statfs(_ h: FuseRequestHeader) throws(FuseError) -> [UInt8] {
        let node = try nodes.node(h.nodeID)
        var s = statvfs()
        if fstatvfs(node.fd, &s) < 0, fstatvfs(tree.rootFD, &s) < 0 { throw .last }
        return FuseAttributes.statfs(s)
    }

    func lseek(_ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        let fh = try r.u64(), offset = try r.u64(), whence = try r.u32()
        let hd = try handle(fh, directory: false)
        guard whence <= 4 else { throw .invalid }   // SET, CUR, END, DATA, HOLE
        let at = Glibc.lseek(hd.fd, off_t(Int64(bitPattern: offset)), Int32(whence))
        if at < 0 { throw .last }
        var b = LittleEndianBytes(capacity: 8)
        b.u64(UInt64(at))
        return b.bytes
    }

    /// READDIR / READDIRPLUS from the directory cookie `offset`: fuse_dirent records (each
    /// after a fuse_entry_out for PLUS), as many as fit. Every named entry in a PLUS reply is one
    /// lookup the guest will FORGET later, so lookups happen only for records that are sent.
    func readdir(_ h: FuseRequestHeader, _ r: inout FuseReader, plus: Bool, room: Int) throws(FuseError) -> [UInt8] {
        let fh = try r.u64(), offset = try r.u64(), size = try r.u32()
        let hd = try handle(fh, directory: true)
        let limit = min(Int(size), room, FuseServer.readLimit)
        if Glibc.lseek(hd.fd, off_t(Int64(bitPattern: offset)), SEEK_SET) < 0 { throw .last }
        var out = LittleEndianBytes(capacity: min(limit, 64 << 10))
        var buf = [UInt8](repeating: 0, count: 32 << 10)
        fill: while true {
            let n = buf.withUnsafeMutableBytes { ckvm_getdents64(hd.fd, $0.baseAddress!, $0.count) }
            if n < 0 { throw .last }
            if n == 0 { break }
            var p = 0
            while p + 19 < n {
                let (ino, next, reclen, type) = buf.withUnsafeBytes { b in
                    (b.loadUnaligned(fromByteOffset: p, as: UInt64.self), b.loadUnaligned(fromByteOffset: p + 8, as: UInt64.self),
                     Int(b.loadUnaligned(fromByteOffset: p + 16, as: UInt16.self)), b[p + 18])
                }
                guard reclen > 19, p + reclen <= n else { break fill }
                var end = p + 19
                while end < p + reclen, buf[end] != 0 { end += 1 }
                let name = Array(buf[(p + 19)..<end])
                p += reclen
                let record = (Fuse.direntHeaderSize + name.count + 7) & ~7
                if out.count + record + (plus ? Fuse.entryOutSize : 0) > limit { break fill }
                if plus {
                    var entry: (UInt64, stat)? = nil
                    if name != [0x2e], name != [0x2e, 0x2e] {
                        entry = try? adopt(try tree.openNode(in: hd.fd, name: name))
                    }
                    FuseAttributes.entry(node: entry?.0 ?? 0, entry?.1, validSeconds: options.cacheSeconds, into: &out)
                }
                out.u64(ino)
                out.u64(next)
                out.u32(UInt32(name.count))
                out.u32(UInt32(type))
                out.raw(name)
                out.align(8)
            }
        }
        return out.bytes
    }
}
