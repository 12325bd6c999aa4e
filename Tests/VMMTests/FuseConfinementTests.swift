#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import VMM

/// Escape attempts against the FUSE server: every one must fail or stay inside the shared
/// directory. Write attempts aim at a decoy directory next to the shared one (never at /etc).
final class FuseConfinementTests: XCTestCase {
    var tree: TempTree!
    var client: FuseTestClient!

    override func setUpWithError() throws {
        tree = try TempTree()
        tree.mkdir("outside")
        tree.write("outside/secret.txt", "TOP SECRET")
        tree.mkdir("root")
        tree.write("root/hello.txt", "hello")
        tree.mkdir("root/dir")
        tree.symlink("/etc", "root/etc-link")
        tree.symlink("/etc/passwd", "root/abs-file-link")
        tree.symlink(tree.path("outside"), "root/abs-outside")
        tree.symlink("../outside", "root/up-outside")
        tree.symlink("../../../../../../../../outside/secret.txt", "root/dir/deep-up")
        tree.link("outside/secret.txt", "root/hard-in")   // made by the test from outside: legitimately inside
        client = FuseTestClient(try FuseServer(root: tree.path("root")))
        client.initialize()
    }

    override func tearDown() {
        // Nothing may have appeared in, or vanished from, the decoy.
        if let tree {
            XCTAssertEqual(tree.list("outside"), ["secret.txt"])
            XCTAssertEqual(tree.read("outside/secret.txt"), "TOP SECRET")
        }
        client = nil; tree = nil
    }

    func node(_ name: String) -> UInt64 { node(Fuse.rootID, name) }

    func node(_ parent: UInt64, _ name: String) -> UInt64 {
        guard let e = client.lookup(parent, name).1 else { XCTFail("lookup \(name)"); return 0 }
        return e.node
    }

    func testDotDotAndSlashNamesAreRefused() {
        let dir = node("dir")
        for bad in ["..", ".", "", "dir/..", "../outside", "a/b", "/etc", "dir/../../outside/secret.txt"] {
            XCTAssertEqual(client.lookupRaw(dir, Array(bad.utf8)), EINVAL, bad)
            XCTAssertEqual(client.lookupRaw(Fuse.rootID, Array(bad.utf8)), EINVAL, bad)
        }
        XCTAssertEqual(client.lookupRaw(Fuse.rootID, [UInt8](repeating: 0x61, count: 256)), ENAMETOOLONG)
        // A name with no terminating NUL.
        XCTAssertEqual(client.call(.lookup, Array("hello.txt".utf8)).error, EINVAL)
    }

    func testSymlinksAreNeverFollowed() {
        for name in ["etc-link", "abs-file-link", "abs-outside", "up-outside"] {
            let link = node(name)
            XCTAssertEqual((client.lookup(Fuse.rootID, name).1?.mode ?? 0) & UInt32(S_IFMT), UInt32(S_IFLNK), name)
            XCTAssertEqual(client.open(link).0, ELOOP, "\(name): open")
            XCTAssertEqual(client.open(link, flags: O_WRONLY).0, ELOOP, "\(name): open for writing")
            XCTAssertEqual(client.open(link, dir: true).0, ENOTDIR, "\(name): opendir")
            XCTAssertEqual(client.lookup(link, "passwd").0, ENOTDIR, "\(name): lookup through it")
            XCTAssertEqual(client.lookup(link, "secret.txt").0, ENOTDIR, "\(name): lookup through it")
            let (err, size) = client.getattrSize(link)
            XCTAssertEqual(err, 0)
            XCTAssertLessThan(size, 100, "\(name): the link's own size, not its target's")
        }
        XCTAssertEqual(client.call(.readlink, node: node("etc-link")).body, Array("/etc".utf8))
        XCTAssertEqual(client.call(.readlink, node: node(node("dir"), "deep-up")).body,
                       Array("../../../../../../../../outside/secret.txt".utf8), "text for the guest to resolve")
    }

    func testWritesThroughSymlinksFail() {
        let absOutside = node("abs-outside"), upOutside = node("up-outside")
        let mode = FuseTestClient.le { $0.u32(0o644); $0.u32(0) }
        // Creating over a symlink, or inside a symlinked directory.
        for name in ["abs-outside", "up-outside", "abs-file-link"] {
            let r = client.call(.create, FuseTestClient.le { $0.u32(UInt32(O_WRONLY)); $0.u32(0o100644); $0.u32(0); $0.u32(0) }
                                 + FuseTestClient.name(name))
            XCTAssertNotEqual(r.error, 0, name)
        }
        for parent in [absOutside, upOutside] {
            XCTAssertEqual(client.call(.create, node: parent, FuseTestClient.le { $0.u32(UInt32(O_WRONLY)); $0.u32(0o100644); $0.u32(0); $0.u32(0) }
                                       + FuseTestClient.name("planted")).error, ENOTDIR)
            XCTAssertEqual(client.call(.mkdir, node: parent, mode + FuseTestClient.name("planted")).error, ENOTDIR)
            XCTAssertEqual(client.call(.symlink, node: parent, FuseTestClient.name("planted") + FuseTestClient.name("x")).error, ENOTDIR)
            XCTAssertEqual(client.call(.unlink, node: parent, FuseTestClient.name("secret.txt")).error, ENOTDIR)
            XCTAssertEqual(client.call(.rename, node: Fuse.rootID, FuseTestClient.le { $0.u64(parent) }
                                       + FuseTestClient.name("hello.txt") + FuseTestClient.name("moved")).error, ENOTDIR)
            XCTAssertEqual(client.call(.link, node: parent, FuseTestClient.le { $0.u64(self.node("hello.txt")) }
                                       + FuseTestClient.name("planted")).error, ENOTDIR)
        }
        // Truncating or chmod-ing a symlink node must not reach its target.
        let setSize = FuseTestClient.le { $0.u32(Fuse.SetattrValid.size); $0.u32(0); $0.u64(0); $0.u64(0); $0.zeros(88 - 24) }
        XCTAssertEqual(client.call(.setattr, node: node("abs-file-link"), setSize).error, EINVAL)
        let setMode = FuseTestClient.le { $0.u32(Fuse.SetattrValid.mode); $0.zeros(44); $0.u32(0o777); $0.zeros(88 - 52) }
        XCTAssertEqual(client.call(.setattr, node: absOutside, setMode).error, EOPNOTSUPP)
        XCTAssertEqual(tree.mode("outside") & 0o777, 0o755)
        // Renaming a symlink is fine: it moves the link, not the target.
        XCTAssertEqual(client.call(.rename, FuseTestClient.le { $0.u64(Fuse.rootID) }
                                   + FuseTestClient.name("up-outside") + FuseTestClient.name("up-renamed")).error, 0)
        XCTAssertTrue(tree.exists("root/up-renamed"))
    }

    func testLinksAndRenamesCannotNameAPlaceOutside() {
        let hello = node("hello.txt")
        for bad in ["../escaped", "/tmp/escaped", "..", "dir/../../escaped"] {
            XCTAssertEqual(client.call(.link, FuseTestClient.le { $0.u64(hello) } + FuseTestClient.name(bad)).error, EINVAL, bad)
            XCTAssertEqual(client.call(.rename, FuseTestClient.le { $0.u64(Fuse.rootID) }
                                       + FuseTestClient.name("hello.txt") + FuseTestClient.name(bad)).error, EINVAL, bad)
            XCTAssertEqual(client.call(.rename, FuseTestClient.le { $0.u64(Fuse.rootID) }
                                       + FuseTestClient.name(bad) + FuseTestClient.name("x")).error, EINVAL, bad)
            XCTAssertEqual(client.call(.symlink, FuseTestClient.name(bad) + FuseTestClient.name("/etc")).error, EINVAL, bad)
            XCTAssertEqual(client.call(.mkdir, FuseTestClient.le { $0.u32(0o755); $0.u32(0) } + FuseTestClient.name(bad)).error, EINVAL, bad)
            XCTAssertEqual(client.call(.unlink, FuseTestClient.name(bad)).error, EINVAL, bad)
        }
        // Unknown node ids (forged or stale) reach nothing.
        for forged: UInt64 in [0, 999, 1 << 40, UInt64.max] {
            XCTAssertEqual(client.call(.link, FuseTestClient.le { $0.u64(forged) } + FuseTestClient.name("x")).error, ENOENT)
            XCTAssertEqual(client.lookup(forged, "hello.txt").0, ENOENT)
            XCTAssertEqual(client.getattrSize(forged).0, ENOENT)
            XCTAssertEqual(client.open(forged).0, ENOENT)
        }
        XCTAssertFalse(tree.exists("root/x"))
        XCTAssertEqual(client.call(.rename, FuseTestClient.le { $0.u64(12345) }
                                   + FuseTestClient.name("hello.txt") + FuseTestClient.name("x")).error, ENOENT)
        // A forged file handle.
        XCTAssertEqual(client.read(0xdead).error, EBADF)
        XCTAssertEqual(client.write(7, [1, 2, 3]).error, EBADF)
        // Directories cannot get a second name; device nodes are never made.
        XCTAssertEqual(client.call(.link, FuseTestClient.le { $0.u64(self.node("dir")) } + FuseTestClient.name("dir2")).error, EPERM)
        for type in [S_IFCHR, S_IFBLK] {
            XCTAssertEqual(client.call(.mknod, FuseTestClient.le { $0.u32(UInt32(type) | 0o666); $0.u32(0x0103); $0.u32(0); $0.u32(0) }
                                       + FuseTestClient.name("dev")).error, EPERM)
        }
        XCTAssertFalse(tree.exists("root/dev"))
    }

    func testHardLinkMadeOutsideIsInsideAndServedAsIs() {
        let hard = node("hard-in")
        XCTAssertEqual(client.lookup(Fuse.rootID, "hard-in").1?.nlink, 2)
        let (err, fh) = client.open(hard)
        XCTAssertEqual(err, 0)
        XCTAssertEqual(client.read(fh).body, Array("TOP SECRET".utf8), "the test put this inode inside; serving it is correct")
        XCTAssertEqual(client.release(fh), 0)
        // A new hard link from the guest names the same inode, inside.
        XCTAssertEqual(client.call(.link, node: node("dir"), FuseTestClient.le { $0.u64(hard) } + FuseTestClient.name("again")).error, 0)
        XCTAssertTrue(tree.exists("root/dir/again"))
        XCTAssertEqual(client.lookup(node("dir"), "again").1?.node, hard, "one host inode, one node")
        XCTAssertEqual(client.call(.unlink, node: node("dir"), FuseTestClient.name("again")).error, 0)
    }

    func testSpecialFilesAreNotOpenedOnTheHost() {
        XCTAssertEqual(mkfifo(tree.path("root/fifo"), 0o644), 0)
        let fifo = node("fifo")
        XCTAssertEqual(client.open(fifo).0, ENXIO, "a FIFO would block or reach a host process")
        XCTAssertEqual(client.open(fifo, flags: O_WRONLY).0, ENXIO)
        // FIFOs can be made (the guest handles their data itself), devices cannot.
        XCTAssertEqual(client.call(.mknod, FuseTestClient.le { $0.u32(UInt32(S_IFIFO) | 0o600); $0.u32(0); $0.u32(0); $0.u32(0) }
                                   + FuseTestClient.name("fifo2")).error, 0)
        XCTAssertEqual(tree.mode("root/fifo2") & S_IFMT, S_IFIFO)
    }

    /// A host mount inside the shared directory (here a tmpfs standing in for a bind mount of /)
    /// is not entered unless the server is told to cross mounts.
    func testMountsInsideAreNotCrossedByDefault() throws {
        tree.mkdir("root/mnt")
        guard mount("tmpfs", tree.path("root/mnt"), "tmpfs", 0, nil) == 0 else {
            throw XCTSkip("cannot mount a tmpfs here (errno \(errno))")
        }
        defer { umount2(tree.path("root/mnt"), Int32(MNT_DETACH)) }
        let fd = open(tree.path("root/mnt/on-the-mount"), O_WRONLY | O_CREAT, 0o644)
        close(fd)
        XCTAssertEqual(client.lookup(Fuse.rootID, "mnt").0, EXDEV)
        var options = FuseServer.Options()
        options.crossMounts = true
        let crossing = FuseTestClient(try FuseServer(root: tree.path("root"), options: options))
        crossing.initialize()
        guard let mnt = crossing.lookup(Fuse.rootID, "mnt").1 else { return XCTFail("lookup with crossMounts") }
        XCTAssertEqual(crossing.lookup(mnt.node, "on-the-mount").0, 0)
    }

    func testServerCannotBeRootedAtAFileOrMissingPath() {
        XCTAssertThrowsError(try FuseServer(root: tree.path("root/hello.txt")))
        XCTAssertThrowsError(try FuseServer(root: tree.path("nope")))
    }
}
