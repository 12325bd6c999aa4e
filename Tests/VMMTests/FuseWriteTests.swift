#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import VMM

/// The FUSE server's write path against a temp directory: what the guest does shows up on the
/// host exactly there.
final class FuseWriteTests: XCTestCase {
    var tree: TempTree!
    var client: FuseTestClient!

    override func setUpWithError() throws {
        tree = try TempTree()
        tree.mkdir("root")
        tree.write("root/old.txt", "0123456789")
        client = FuseTestClient(try FuseServer(root: tree.path("root")))
        client.initialize()
    }

    override func tearDown() { client = nil; tree = nil }

    static func createArgs(_ flags: Int32, _ mode: UInt32) -> [UInt8] {
        FuseTestClient.le { $0.u32(UInt32(bitPattern: flags)); $0.u32(mode); $0.u32(0o022); $0.u32(0) }
    }

    func testCreateWriteReadBack() {
        let r = client.call(.create, FuseWriteTests.createArgs(O_RDWR | O_EXCL, 0o100640) + FuseTestClient.name("new.txt"),
                            uid: 1234, gid: 5678)
        XCTAssertEqual(r.error, 0)
        XCTAssertEqual(r.body.count, Fuse.entryOutSize + 16)
        let entry = FuseTestClient.entry(r.body)
        let fh = FuseTestClient.u64(r.body, Fuse.entryOutSize)
        XCTAssertEqual(client.write(fh, Array("guest data".utf8)).error, 0)
        XCTAssertEqual(FuseTestClient.u32(client.write(fh, Array("!".utf8), offset: 10).body, 0), 1)
        XCTAssertEqual(client.read(fh).body, Array("guest data!".utf8))
        XCTAssertEqual(client.release(fh), 0)
        XCTAssertEqual(tree.read("root/new.txt"), "guest data!")
        XCTAssertEqual(tree.mode("root/new.txt") & 0o7777, 0o640, "the guest's mode, not the host umask's")
        var st = stat()
        lstat(tree.path("root/new.txt"), &st)
        if geteuid() == 0 { XCTAssertEqual([st.st_uid, st.st_gid], [1234, 5678], "owned by the guest user") }
        XCTAssertEqual(client.lookup(Fuse.rootID, "new.txt").1?.node, entry.node)
        // O_EXCL on an existing name fails; without it the file is opened unchanged.
        XCTAssertEqual(client.call(.create, FuseWriteTests.createArgs(O_RDWR | O_EXCL, 0o100600) + FuseTestClient.name("new.txt")).error, EEXIST)
        let again = client.call(.create, FuseWriteTests.createArgs(O_RDWR, 0o100600) + FuseTestClient.name("new.txt"))
        XCTAssertEqual(again.error, 0)
        XCTAssertEqual(tree.mode("root/new.txt") & 0o7777, 0o640)
        XCTAssertEqual(client.release(FuseTestClient.u64(again.body, Fuse.entryOutSize)), 0)
    }

    func testOpenForWritingTruncateAndSetattr() {
        guard let old = client.lookup(Fuse.rootID, "old.txt").1 else { return XCTFail() }
        let (err, fh) = client.open(old.node, flags: O_WRONLY | O_APPEND)
        XCTAssertEqual(err, 0)
        XCTAssertEqual(client.write(fh, Array("AB".utf8), offset: 0).error, 0)
        XCTAssertEqual(tree.read("root/old.txt"), "0123456789AB", "O_APPEND kept")
        XCTAssertEqual(client.release(fh), 0)
        // SETATTR: size, mode, times.
        var b = LittleEndianBytes()
        b.u32(Fuse.SetattrValid.size | Fuse.SetattrValid.mode | Fuse.SetattrValid.mtime)
        b.u32(0); b.u64(0); b.u64(4); b.u64(0); b.u64(0); b.u64(1_000_000_000); b.u64(0)
        b.u32(0); b.u32(5); b.u32(0); b.u32(0o600); b.u32(0); b.u32(0); b.u32(0); b.u32(0)
        let r = client.call(.setattr, node: old.node, b.bytes)
        XCTAssertEqual(r.error, 0)
        XCTAssertEqual(FuseTestClient.u64(r.body, 16 + 8), 4, "attr_out carries the new size")
        XCTAssertEqual(tree.read("root/old.txt"), "0123")
        XCTAssertEqual(tree.mode("root/old.txt") & 0o7777, 0o600)
        var st = stat()
        lstat(tree.path("root/old.txt"), &st)
        XCTAssertEqual(st.st_mtim.tv_sec, 1_000_000_000)
        XCTAssertEqual(st.st_mtim.tv_nsec, 5)
    }

    func testDirectoriesRenameUnlinkRmdirSymlinkLink() {
        let mkdir = client.call(.mkdir, FuseTestClient.le { $0.u32(0o750); $0.u32(0) } + FuseTestClient.name("d"))
        XCTAssertEqual(mkdir.error, 0)
        let d = FuseTestClient.entry(mkdir.body).node
        XCTAssertEqual(tree.mode("root/d") & 0o7777, 0o750)
        XCTAssertEqual(client.call(.mkdir, FuseTestClient.le { $0.u32(0o750); $0.u32(0) } + FuseTestClient.name("d")).error, EEXIST)
        // rename old.txt -> d/moved.txt, then RENAME2 with NOREPLACE onto an existing name.
        XCTAssertEqual(client.call(.rename, FuseTestClient.le { $0.u64(d) } + FuseTestClient.name("old.txt") + FuseTestClient.name("moved.txt")).error, 0)
        XCTAssertEqual(tree.read("root/d/moved.txt"), "0123456789")
        tree.write("root/d/other.txt", "x")
        XCTAssertEqual(client.call(.rename2, node: d, FuseTestClient.le { $0.u64(d); $0.u32(1); $0.u32(0) }
                                   + FuseTestClient.name("moved.txt") + FuseTestClient.name("other.txt")).error, EEXIST)
        XCTAssertEqual(client.call(.rename2, node: d, FuseTestClient.le { $0.u64(d); $0.u32(4); $0.u32(0) }
                                   + FuseTestClient.name("moved.txt") + FuseTestClient.name("wh")).error, EINVAL, "no whiteouts")
        // symlink + readlink; hard link.
        let sl = client.call(.symlink, node: d, FuseTestClient.name("sl") + FuseTestClient.name("/absolute/target"))
        XCTAssertEqual(sl.error, 0)
        XCTAssertEqual(client.call(.readlink, node: FuseTestClient.entry(sl.body).node).body, Array("/absolute/target".utf8))
        guard let moved = client.lookup(d, "moved.txt").1 else { return XCTFail() }
        let ln = client.call(.link, FuseTestClient.le { $0.u64(moved.node) } + FuseTestClient.name("hard"))
        XCTAssertEqual(ln.error, 0)
        XCTAssertEqual(FuseTestClient.entry(ln.body).nlink, 2)
        XCTAssertEqual(tree.read("root/hard"), "0123456789")
        // unlink and rmdir.
        XCTAssertEqual(client.call(.rmdir, FuseTestClient.name("d")).error, ENOTEMPTY)
        for n in ["moved.txt", "other.txt", "sl"] { XCTAssertEqual(client.call(.unlink, node: d, FuseTestClient.name(n)).error, 0, n) }
        XCTAssertEqual(client.call(.unlink, FuseTestClient.name("d")).error, EISDIR)
        XCTAssertEqual(client.call(.rmdir, FuseTestClient.name("d")).error, 0)
        XCTAssertEqual(tree.list("root"), ["hard"])
        XCTAssertEqual(client.getattrSize(d).0, 0, "a node stays valid until forgotten (the guest may hold it)")
    }

    func testReadOnlyServerRefusesEveryChange() throws {
        var options = FuseServer.Options()
        options.readOnly = true
        let ro = FuseTestClient(try FuseServer(root: tree.path("root"), options: options))
        ro.initialize()
        guard let old = ro.lookup(Fuse.rootID, "old.txt").1 else { return XCTFail() }
        XCTAssertEqual(ro.open(old.node, flags: O_WRONLY).0, EROFS)
        XCTAssertEqual(ro.open(old.node, flags: O_RDONLY | O_TRUNC).0, EROFS)
        XCTAssertEqual(ro.call(.create, FuseWriteTests.createArgs(O_RDWR, 0o100644) + FuseTestClient.name("n")).error, EROFS)
        XCTAssertEqual(ro.call(.mkdir, FuseTestClient.le { $0.u32(0o755); $0.u32(0) } + FuseTestClient.name("n")).error, EROFS)
        XCTAssertEqual(ro.call(.unlink, FuseTestClient.name("old.txt")).error, EROFS)
        XCTAssertEqual(ro.open(old.node).0, 0)
        XCTAssertEqual(tree.list("root"), ["old.txt"])
    }
}
