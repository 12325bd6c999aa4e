#if canImport(Glibc)
import Glibc
#endif

/// An in-process FUSE server over one host directory (the bundle's rootfs), the file-system half
/// of virtio-fs. Requests are byte arrays exactly as the guest's FUSE driver sends them and are
/// parsed with bounds checks; node ids and file handles from the guest are looked up in tables and
/// never trusted; every file-system call goes through `ConfinedTree`, so no request can reach a
/// file outside the directory. One request at a time (callers serialise).
public final class FuseServer {
    public struct Options: Sendable {
        /// Entry and attribute cache lifetime the guest may use.
        public var cacheSeconds: UInt64 = 1
        /// Largest WRITE payload (and READ reply) the guest is told about.
        public var maxWrite: UInt32 = 128 << 10
        public var maxNodes = 1 << 16
        public var maxHandles = 1 << 12
        /// Refuse every modification with EROFS.
        public var readOnly = false
        /// Give new files the requesting guest uid/gid (needs CAP_CHOWN, so root only).
        public var chownNewFiles = geteuid() == 0
        /// Let lookups enter other mounts below the directory (off: RESOLVE_NO_XDEV).
        public var crossMounts = false
        public init() {}
    }

    struct Handle {
        let fd: Int32
        let isDirectory: Bool
    }

    public let options: Options
    let tree: ConfinedTree
    let nodes: FuseNodeTable
    var handles: [UInt64: Handle] = [:]
    var nextHandle: UInt64 = 1
    /// The negotiated protocol minor version, nil before FUSE_INIT.
    public private(set) var minorVersion: UInt32?
    /// Requests answered with an error, by errno (diagnostics and tests).
    public private(set) var errorCounts: [Int32: Int] = [:]

    public init(root: String, options: Options = Options()) throws(KvmError) {
        self.options = options
        tree = try ConfinedTree(root: root, crossMounts: options.crossMounts)
        let st: stat
        do { st = try tree.stat(tree.rootFD) } catch { throw .syscall("stat \(root)", errno: error.errno) }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw .invalidConfiguration("\(root) is not a directory") }
        nodes = FuseNodeTable(rootFD: tree.rootFD, rootStat: st, limit: options.maxNodes)
    }

    deinit { for h in handles.values { close(h.fd) } }

    public var rootPath: String { tree.rootPath }
    public var nodeCount: Int { nodes.count }
    public var handleCount: Int { handles.count }

    /// Answers one request. nil: no reply is due (FORGET, BATCH_FORGET, INTERRUPT) or the bytes
    /// do not even hold a header. A reply never exceeds `maxReplySize` (the room the guest gave).
    public func handle(_ request: [UInt8], maxReplySize: Int = Int.max) -> [UInt8]? {
        guard let h = FuseWire.header(request) else { return nil }
        let op = FuseOpcode(rawValue: h.opcode)
        if op == .forget || op == .batchForget || op == .interrupt {
            // The guest expects no reply to these, not even an error.
            guard minorVersion != nil, Int(h.length) <= request.count else { return nil }
            var body = FuseReader(request, from: Fuse.inHeaderSize, end: Int(h.length))
            _ = try? dispatch(op!, h, &body, room: 0)
            return nil
        }
        guard h.length >= UInt32(Fuse.inHeaderSize), Int(h.length) <= request.count else {
            return error(h, FuseError.invalid)
        }
        var body = FuseReader(request, from: Fuse.inHeaderSize, end: Int(h.length))
        let room = max(0, maxReplySize - Fuse.outHeaderSize)
        do throws(FuseError) {
            guard let op else { throw FuseError.notSupported }
            if minorVersion == nil, op != .initialize { throw FuseError.io }
            guard let reply = try dispatch(op, h, &body, room: room) else { return nil }
            guard reply.count <= room else { throw FuseError(ERANGE) }
            return FuseWire.reply(unique: h.unique, body: reply)
        } catch {
            return self.error(h, error)
        }
    }

    func error(_ h: FuseRequestHeader, _ e: FuseError) -> [UInt8] {
        errorCounts[e.errno, default: 0] += 1
        return FuseWire.reply(unique: h.unique, error: e.errno)
    }

    func dispatch(_ op: FuseOpcode, _ h: FuseRequestHeader, _ r: inout FuseReader, room: Int) throws(FuseError) -> [UInt8]? {
        switch op {
        case .initialize: return try initialize(&r)
        case .destroy:
            nodes.removeAll()
            for hd in handles.values { close(hd.fd) }
            handles = [:]
            minorVersion = nil
            return []
        case .forget:
            nodes.forget(h.nodeID, count: try r.u64())
            return nil
        case .batchForget:
            try batchForget(&r)
            return nil
        case .interrupt: return nil
        case .lookup: return try lookupReply(h, &r)
        case .getattr: return try getattr(h, &r)
        case .readlink: return try readlink(h)
        case .open: return try open(h, &r)
        case .opendir: return try opendir(h)
        case .read: return try read(&r, room: room)
        case .readdir: return try readdir(h, &r, plus: false, room: room)
        case .readdirplus: return try readdir(h, &r, plus: true, room: room)
        case .release, .releasedir: return try release(&r)
        case .flush: return []
        case .fsync, .fsyncdir: return try fsync(&r)
        case .statfs: return try statfs(h)
        case .lseek: return try lseek(&r)
        case .syncfs: return []
        case .write: return try write(&r)
        case .create: return try create(h, &r)
        case .mkdir: return try mkdir(h, &r)
        case .mknod: return try mknod(h, &r)
        case .symlink: return try symlink(h, &r)
        case .link: return try link(h, &r)
        case .unlink: return try remove(h, &r, directory: false)
        case .rmdir: return try remove(h, &r, directory: true)
        case .rename: return try rename(h, &r, flags: false)
        case .rename2: return try rename(h, &r, flags: true)
        case .setattr: return try setattr(h, &r)
        default:
            // xattrs, ACCESS (the guest checks permissions itself), locks (kept in the guest),
            // ioctl, poll, bmap, fallocate, copy_file_range, tmpfile: ENOSYS makes the guest stop
            // asking or fall back.
            throw FuseError.notSupported
        }
    }

    func initialize(_ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        let major = try r.u32(), minor = try r.u32(), maxReadahead = try r.u32(), flags = try r.u32()
        guard major >= Fuse.kernelVersion else { throw FuseError(EPROTO) }
        var out = LittleEndianBytes(capacity: 64)
        if major > Fuse.kernelVersion {
            // The guest speaks a newer major: answer with ours and it retries with ours.
            out.u32(Fuse.kernelVersion); out.u32(Fuse.kernelMinorVersion); out.zeros(56)
            return out.bytes
        }
        guard minor >= Fuse.minimumMinorVersion else { throw FuseError(EPROTO) }
        let negotiated = min(minor, Fuse.kernelMinorVersion)
        typealias F = Fuse.InitFlag
        let wanted = F.asyncRead | F.atomicOTrunc | F.bigWrites | F.doReaddirplus | F.readdirplusAuto | F.maxPages
        let agreed = flags & wanted
        let maxWrite = max(4096, options.maxWrite)
        out.u32(Fuse.kernelVersion)
        out.u32(negotiated)
        out.u32(min(maxReadahead, maxWrite))
        out.u32(agreed)
        out.u16(16)                    // max_background
        out.u16(12)                    // congestion_threshold
        out.u32(maxWrite)
        out.u32(1)                     // time_gran: nanoseconds
        out.u16(UInt16(min(maxWrite / 4096, 256)))   // max_pages (with FUSE_MAX_PAGES)
        out.u16(0)
        out.u32(0)                     // flags2
        out.zeros(28)
        minorVersion = negotiated
        return negotiated < 23 ? Array(out.bytes.prefix(24)) : out.bytes
    }

    func batchForget(_ r: inout FuseReader) throws(FuseError) {
        let count = try r.u32()
        _ = try r.u32()
        guard Int(count) <= r.remaining / 16 else { throw .invalid }
        for _ in 0..<count { nodes.forget(try r.u64(), count: try r.u64()) }
    }

    // MARK: handles

    func addHandle(_ fd: Int32, directory: Bool) throws(FuseError) -> UInt64 {
        guard handles.count < options.maxHandles else { close(fd); throw FuseError(EMFILE) }
        let fh = nextHandle
        nextHandle += 1
        handles[fh] = Handle(fd: fd, isDirectory: directory)
        return fh
    }

    func handle(_ fh: UInt64, directory: Bool) throws(FuseError) -> Handle {
        guard let h = handles[fh], h.isDirectory == directory else { throw .badHandle }
        return h
    }

    func release(_ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        let fh = try r.u64()
        guard let h = handles.removeValue(forKey: fh) else { throw .badHandle }
        close(h.fd)
        return []
    }

    func fsync(_ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        let fh = try r.u64(), flags = try r.u32()
        guard let h = handles[fh] else { throw .badHandle }
        if (flags & 1 != 0 ? fdatasync(h.fd) : Glibc.fsync(h.fd)) < 0 { throw .last }
        return []
    }

    // MARK: entries

    /// Looks `name` up in directory node `parent` and counts one lookup of the result.
    func lookup(parent: UInt64, name: [UInt8]) throws(FuseError) -> (UInt64, stat) {
        let p = try nodes.node(parent)
        guard p.type == S_IFDIR else { throw FuseError(ENOTDIR) }
        return try adopt(try tree.openNode(in: p.fd, name: name))
    }

    /// Takes an O_PATH descriptor into the node table.
    func adopt(_ fd: Int32) throws(FuseError) -> (UInt64, stat) {
        let st: stat
        do { st = try tree.stat(fd) } catch { close(fd); throw error }
        return (try nodes.insert(fd: fd, stat: st), st)
    }

    func entryReply(_ id: UInt64, _ st: stat) -> [UInt8] {
        var b = LittleEndianBytes(capacity: Fuse.entryOutSize)
        FuseAttributes.entry(node: id, st, validSeconds: options.cacheSeconds, into: &b)
        return b.bytes
    }

    func lookupReply(_ h: FuseRequestHeader, _ r: inout FuseReader) throws(FuseError) -> [UInt8] {
        let name = try r.cString(max: Fuse.nameMax + 1)
        let (id, st) = try lookup(parent: h.nodeID, name: name)
        return entryReply(id, st)
    }
}
