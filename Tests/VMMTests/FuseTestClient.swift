#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import VMM

/// Speaks FUSE to a `FuseServer` the way the guest kernel would, one request at a time.
final class FuseTestClient {
    struct Reply { let error: Int32; let body: [UInt8] }
    struct Entry { let node: UInt64; let ino: UInt64; let size: UInt64; let mode: UInt32; let nlink: UInt32 }

    let server: FuseServer
    var unique: UInt64 = 0

    init(_ server: FuseServer) { self.server = server }

    static func le(_ build: (inout LittleEndianBytes) -> Void) -> [UInt8] {
        var b = LittleEndianBytes()
        build(&b)
        return b.bytes
    }

    static func name(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

    func raw(_ opcode: UInt32, node: UInt64, _ body: [UInt8], uid: UInt32 = 0, gid: UInt32 = 0,
             maxReply: Int = Int.max) -> [UInt8]? {
        unique += 1
        var b = LittleEndianBytes()
        b.u32(UInt32(Fuse.inHeaderSize + body.count)); b.u32(opcode); b.u64(unique); b.u64(node)
        b.u32(uid); b.u32(gid); b.u32(4242); b.u32(0)
        b.raw(body)
        return server.handle(b.bytes, maxReplySize: maxReply)
    }

    func call(_ op: FuseOpcode, node: UInt64 = Fuse.rootID, _ body: [UInt8] = [], uid: UInt32 = 0, gid: UInt32 = 0,
              maxReply: Int = Int.max, file: StaticString = #filePath, line: UInt = #line) -> Reply {
        let sent = unique + 1
        guard let r = raw(op.rawValue, node: node, body, uid: uid, gid: gid, maxReply: maxReply) else {
            XCTFail("no reply to \(op)", file: file, line: line)
            return Reply(error: -1, body: [])
        }
        let len = r.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self) }
        let err = r.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }
        let uniq = r.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self) }
        XCTAssertEqual(Int(len), r.count, "reply length field", file: file, line: line)
        XCTAssertEqual(uniq, sent, "reply unique", file: file, line: line)
        XCTAssertLessThanOrEqual(r.count, maxReply, file: file, line: line)
        return Reply(error: -err, body: Array(r.dropFirst(16)))
    }

    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 { b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt32.self) } }
    static func u64(_ b: [UInt8], _ o: Int) -> UInt64 { b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt64.self) } }

    /// fuse_entry_out -> the fields the tests look at (attr starts at 40).
    static func entry(_ b: [UInt8], at o: Int = 0) -> Entry {
        Entry(node: u64(b, o), ino: u64(b, o + 40), size: u64(b, o + 48), mode: u32(b, o + 40 + 60), nlink: u32(b, o + 40 + 64))
    }

    @discardableResult
    func initialize(minor: UInt32 = 38, flags: UInt32 = Fuse.InitFlag.doReaddirplus) -> Reply {
        call(.initialize, FuseTestClient.le { $0.u32(7); $0.u32(minor); $0.u32(1 << 20); $0.u32(flags); $0.zeros(48) })
    }

    func lookup(_ parent: UInt64, _ name: String) -> (Int32, Entry?) {
        let r = call(.lookup, node: parent, FuseTestClient.name(name))
        return (r.error, r.error == 0 ? FuseTestClient.entry(r.body) : nil)
    }

    func lookupRaw(_ parent: UInt64, _ name: [UInt8]) -> Int32 { call(.lookup, node: parent, name + [0]).error }

    func open(_ node: UInt64, flags: Int32 = O_RDONLY, dir: Bool = false) -> (Int32, UInt64) {
        let r = call(dir ? .opendir : .open, node: node, FuseTestClient.le { $0.u32(UInt32(bitPattern: flags)); $0.u32(0) })
        return (r.error, r.error == 0 ? FuseTestClient.u64(r.body, 0) : 0)
    }

    func read(_ fh: UInt64, offset: UInt64 = 0, size: UInt32 = 4096, op: FuseOpcode = .read, node: UInt64 = Fuse.rootID,
              maxReply: Int = Int.max) -> Reply {
        call(op, node: node, FuseTestClient.le { $0.u64(fh); $0.u64(offset); $0.u32(size); $0.u32(0); $0.u64(0); $0.u32(0); $0.u32(0) },
             maxReply: maxReply)
    }

    func write(_ fh: UInt64, _ data: [UInt8], offset: UInt64 = 0) -> Reply {
        call(.write, FuseTestClient.le { $0.u64(fh); $0.u64(offset); $0.u32(UInt32(data.count)); $0.u32(0); $0.u64(0); $0.u32(0); $0.u32(0); $0.raw(data) })
    }

    func release(_ fh: UInt64, dir: Bool = false) -> Int32 {
        call(dir ? .releasedir : .release, FuseTestClient.le { $0.u64(fh); $0.u32(0); $0.u32(0); $0.u64(0) }).error
    }

    /// Names from a READDIR(PLUS) reply, with the node ids of PLUS entries.
    static func dirents(_ b: [UInt8], plus: Bool) -> [(name: String, node: UInt64, next: UInt64)] {
        var out: [(String, UInt64, UInt64)] = []
        var o = 0
        while o < b.count {
            let node = plus ? u64(b, o) : 0
            if plus { o += Fuse.entryOutSize }
            let next = u64(b, o + 8), len = Int(u32(b, o + 16))
            out.append((String(decoding: b[(o + 24)..<(o + 24 + len)], as: UTF8.self), node, next))
            o += (24 + len + 7) & ~7
        }
        return out
    }

    func forget(_ node: UInt64, _ n: UInt64 = 1) {
        XCTAssertNil(raw(FuseOpcode.forget.rawValue, node: node, FuseTestClient.le { $0.u64(n) }))
    }

    func getattrSize(_ node: UInt64) -> (Int32, UInt64) {
        let r = call(.getattr, node: node, FuseTestClient.le { $0.u32(0); $0.u32(0); $0.u64(0) })
        return (r.error, r.error == 0 ? FuseTestClient.u64(r.body, 16 + 8) : 0)
    }
}

/// A temporary directory tree built with plain syscalls, removed at the end.
final class TempTree {
    let base: String

    init() throws {
        var template = Array("/tmp/vmm-fuse-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw XCTSkip("mkdtemp failed") }
        base = String(cString: p)
    }

    deinit { TempTree.remove(base) }

    /// rm -rf without following symlinks (the trees hold links to /etc and to the decoy).
    static func remove(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if st.st_mode & S_IFMT == S_IFDIR {
            if let d = opendir(path) {
                var names: [String] = []
                while let e = readdir(d) {
                    let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                    if name != ".", name != ".." { names.append(name) }
                }
                closedir(d)
                for n in names { remove(path + "/" + n) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    func path(_ p: String) -> String { base + "/" + p }

    func mkdir(_ p: String) { XCTAssertEqual(Glibc.mkdir(path(p), 0o755), 0, p) }

    func write(_ p: String, _ text: String, mode: mode_t = 0o644) {
        let fd = Glibc.open(path(p), O_WRONLY | O_CREAT | O_TRUNC, mode)
        XCTAssertGreaterThanOrEqual(fd, 0, p)
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
    }

    func read(_ p: String) -> String? {
        let fd = Glibc.open(path(p), O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = Glibc.read(fd, &buf, buf.count)
        return n < 0 ? nil : String(decoding: buf.prefix(n), as: UTF8.self)
    }

    func symlink(_ target: String, _ p: String) { XCTAssertEqual(Glibc.symlink(target, path(p)), 0, p) }
    func link(_ from: String, _ p: String) { XCTAssertEqual(Glibc.link(path(from), path(p)), 0, p) }
    func exists(_ p: String) -> Bool { var st = stat(); return lstat(path(p), &st) == 0 }
    func mode(_ p: String) -> mode_t { var st = stat(); lstat(path(p), &st); return st.st_mode }

    /// Entries of a directory (sorted), for "nothing changed outside" checks.
    func list(_ p: String) -> [String] {
        guard let d = opendir(path(p)) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != ".", name != ".." { out.append(name) }
        }
        return out.sorted()
    }
}
