#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import VMM

/// The FUSE server answering read requests against a temp directory (no KVM).
final class FuseServerTests: XCTestCase {
    var tree: TempTree!
    var client: FuseTestClient!

    override func setUpWithError() throws {
        tree = try TempTree()
        tree.mkdir("root")
        tree.write("root/hello.txt", "hello world\n")
        tree.mkdir("root/dir")
        tree.write("root/dir/nested.txt", "nested")
        tree.symlink("dir/nested.txt", "root/rel-link")
        client = FuseTestClient(try FuseServer(root: tree.path("root")))
    }

    override func tearDown() { client = nil; tree = nil }

    func testInitNegotiatesVersionAndLimits() {
        XCTAssertEqual(client.lookup(Fuse.rootID, "hello.txt").0, EIO, "requests before INIT fail")
        let r = client.initialize(minor: 38, flags: Fuse.InitFlag.doReaddirplus | Fuse.InitFlag.asyncRead | (1 << 30))
        XCTAssertEqual(r.error, 0)
        XCTAssertEqual(r.body.count, 64)
        XCTAssertEqual(FuseTestClient.u32(r.body, 0), 7)
        XCTAssertEqual(FuseTestClient.u32(r.body, 4), Fuse.kernelMinorVersion)
        XCTAssertEqual(FuseTestClient.u32(r.body, 12), Fuse.InitFlag.doReaddirplus | Fuse.InitFlag.asyncRead)  // unknown bit dropped
        XCTAssertEqual(FuseTestClient.u32(r.body, 20), 128 << 10)   // max_write
        XCTAssertEqual(client.server.minorVersion, Fuse.kernelMinorVersion)
        let old = FuseTestClient(client.server)
        XCTAssertEqual(old.initialize(minor: 22).body.count, 24, "pre-7.23 guests get the short init_out")
        XCTAssertEqual(old.initialize(minor: 5).error, EPROTO)
        let newer = old.call(.initialize, FuseTestClient.le { $0.u32(8); $0.u32(0); $0.u32(0); $0.u32(0) })
        XCTAssertEqual(newer.error, 0)
        XCTAssertEqual(FuseTestClient.u32(newer.body, 0), 7, "a newer major is answered with ours")
        XCTAssertEqual(old.call(.initialize, FuseTestClient.le { $0.u32(6); $0.u32(0); $0.u32(0); $0.u32(0) }).error, EPROTO)
    }

    func testLookupGetattrOpenReadRelease() {
        client.initialize()
        let (err, e) = client.lookup(Fuse.rootID, "hello.txt")
        XCTAssertEqual(err, 0)
        guard let e else { return }
        XCTAssertGreaterThan(e.node, Fuse.rootID)
        XCTAssertEqual(e.size, 12)
        XCTAssertEqual(e.mode & UInt32(S_IFMT), UInt32(S_IFREG))
        XCTAssertEqual(client.getattrSize(e.node).1, 12)
        let (oerr, fh) = client.open(e.node)
        XCTAssertEqual(oerr, 0)
        XCTAssertEqual(client.read(fh).body, Array("hello world\n".utf8))
        XCTAssertEqual(client.read(fh, offset: 6, size: 5).body, Array("world".utf8))
        XCTAssertEqual(client.read(fh, offset: 100).body, [], "past the end")
        // The reply never exceeds the room the guest gave.
        XCTAssertEqual(client.read(fh, size: 4096, maxReply: 16 + 4).body, Array("hell".utf8))
        XCTAssertEqual(client.release(fh), 0)
        XCTAssertEqual(client.read(fh).error, EBADF, "released handle")
        XCTAssertEqual(client.server.handleCount, 0)
        // Same inode, same node; lookups are counted and forgotten.
        XCTAssertEqual(client.lookup(Fuse.rootID, "hello.txt").1?.node, e.node)
        let before = client.server.nodeCount
        client.forget(e.node, 2)
        XCTAssertEqual(client.server.nodeCount, before - 1)
        XCTAssertEqual(client.getattrSize(e.node).0, ENOENT, "forgotten node id")
        XCTAssertNotEqual(client.lookup(Fuse.rootID, "hello.txt").1?.node, e.node, "node ids are not reused")
    }

    func testNestedLookupStatfsAndReadlink() {
        client.initialize()
        guard let dir = client.lookup(Fuse.rootID, "dir").1 else { return XCTFail("no dir") }
        XCTAssertEqual(dir.mode & UInt32(S_IFMT), UInt32(S_IFDIR))
        guard let nested = client.lookup(dir.node, "nested.txt").1 else { return XCTFail("no nested") }
        let (_, fh) = client.open(nested.node)
        XCTAssertEqual(client.read(fh).body, Array("nested".utf8))
        XCTAssertEqual(client.lookup(dir.node, "missing").0, ENOENT)
        XCTAssertEqual(client.lookup(nested.node, "x").0, ENOTDIR)
        let fs = client.call(.statfs)
        XCTAssertEqual(fs.error, 0)
        XCTAssertEqual(fs.body.count, 80)
        XCTAssertGreaterThan(FuseTestClient.u32(fs.body, 40), 0, "bsize")
        guard let link = client.lookup(Fuse.rootID, "rel-link").1 else { return XCTFail("no link") }
        XCTAssertEqual(link.mode & UInt32(S_IFMT), UInt32(S_IFLNK))
        XCTAssertEqual(client.call(.readlink, node: link.node).body, Array("dir/nested.txt".utf8))
        XCTAssertEqual(client.call(.readlink, node: nested.node).error, EINVAL)
    }

    func testReaddirAndReaddirplus() {
        client.initialize()
        let (err, fh) = client.open(Fuse.rootID, dir: true)
        XCTAssertEqual(err, 0)
        let plain = FuseTestClient.dirents(client.read(fh, op: .readdir).body, plus: false)
        XCTAssertEqual(Set(plain.map(\.name)), [".", "..", "hello.txt", "dir", "rel-link"])
        // Resume from a cookie in the middle: the rest comes back, nothing twice.
        let first = client.read(fh, size: 32 + 8, op: .readdir)
        let one = FuseTestClient.dirents(first.body, plus: false)
        XCTAssertEqual(one.count, 1)
        let rest = FuseTestClient.dirents(client.read(fh, offset: one[0].next, op: .readdir).body, plus: false)
        XCTAssertEqual(Set(rest.map(\.name) + [one[0].name]), Set(plain.map(\.name)))
        XCTAssertEqual(rest.count, plain.count - 1)

        let nodes = client.server.nodeCount
        let plus = FuseTestClient.dirents(client.read(fh, op: .readdirplus, node: Fuse.rootID).body, plus: true)
        XCTAssertEqual(Set(plus.map(\.name)), Set(plain.map(\.name)))
        for e in plus {
            if e.name == "." || e.name == ".." { XCTAssertEqual(e.node, 0, e.name) } else { XCTAssertGreaterThan(e.node, 1, e.name) }
        }
        XCTAssertEqual(client.server.nodeCount, nodes + 3, "each named entry is one lookup")
        for e in plus where e.node != 0 { client.forget(e.node) }
        XCTAssertEqual(client.server.nodeCount, nodes)
        // A buffer too small for one PLUS record returns nothing and counts no lookup.
        XCTAssertEqual(client.read(fh, size: 100, op: .readdirplus).body, [])
        XCTAssertEqual(client.server.nodeCount, nodes)
        XCTAssertEqual(client.read(fh, op: .read).error, EBADF, "a directory handle is not a file handle")
        XCTAssertEqual(client.release(fh, dir: true), 0)
        XCTAssertEqual(client.open(Fuse.rootID).0, EISDIR)
        XCTAssertEqual(client.open(client.lookup(Fuse.rootID, "hello.txt").1!.node, dir: true).0, ENOTDIR)
    }
}
