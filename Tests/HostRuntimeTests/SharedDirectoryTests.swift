import XCTest
import TestSupport
#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
@testable import HostRuntime

final class SharedDirectoryTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir("kata-shared") }
    override func tearDown() { Posix.removeAll(dir) }

    func testRemovesWhenNothingIsMounted() throws {
        let shared = dir + "/shared"
        try Posix.mkdirAll(shared + "/a/b")
        writeFile(shared + "/a/b/f", "x")
        XCTAssertTrue(symlink("/etc", shared + "/etc-link") == 0)
        XCTAssertTrue(SharedDirectory.remove(shared))
        XCTAssertFalse(Posix.exists(shared))
        XCTAssertTrue(Posix.exists("/etc/passwd") || Posix.exists("/etc/hostname"), "symlink target untouched")
        XCTAssertTrue(SharedDirectory.remove(dir + "/never-existed"))
    }

    func testUnescapeOfMountinfoPaths() {
        XCTAssertEqual(SharedDirectory.unescape(#"/tmp/a\040b\011c\134d"#), "/tmp/a b\tc\\d")
        XCTAssertEqual(SharedDirectory.unescape("/plain"), "/plain")
    }

    /// Mounts happen in a child with a private mount namespace, so nothing can leak onto the host.
    func testRefusesWhileSomethingIsMountedBelow() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to bind-mount (running as uid \(getuid()))") }
        let shared = dir + "/shared", src = dir + "/user-data"
        try Posix.mkdirAll(shared + "/with space")
        try Posix.mkdirAll(shared + "/plain")
        try Posix.mkdirAll(src)
        writeFile(src + "/precious", "do not delete")

        let (out, st) = runInChild { fd in
            guard kata_unshare(0x0002_0000 /* CLONE_NEWNS */) == 0 else { emit(fd, "skip: unshare: \(errno)\n"); return 0 }
            let MS_BIND: UInt = 4096, MS_REC: UInt = 16384, MS_PRIVATE: UInt = 1 << 18
            guard mount("", "/", "", MS_REC | MS_PRIVATE, nil) == 0 else { emit(fd, "skip: private /\n"); return 0 }
            guard mount(src, shared + "/with space", "", MS_BIND, nil) == 0 else { emit(fd, "skip: bind \(errno)\n"); return 0 }
            emit(fd, "points=\(SharedDirectory.mountPoints(under: shared).sorted())\n")
            emit(fd, "remove=\(SharedDirectory.remove(shared))\n")
            emit(fd, "precious1=\(Posix.exists(src + "/precious"))\n")
            emit(fd, "removeSlash=\(SharedDirectory.remove(shared + "/"))\n")
            emit(fd, "precious2=\(Posix.exists(src + "/precious"))\n")
            emit(fd, "removeDot=\(SharedDirectory.remove(shared + "/./"))\n")
            emit(fd, "precious3=\(Posix.exists(src + "/precious"))\n")
            // A sibling whose name starts with the same prefix is not "below".
            emit(fd, "prefixPoints=\(SharedDirectory.mountPoints(under: shared + "/with").count)\n")
            _ = umount2(shared + "/with space", 2)
            emit(fd, "points2=\(SharedDirectory.mountPoints(under: shared).count)\n")
            return 0
        }
        XCTAssertEqual(describeWaitStatus(st), "exit 0", out)
        if out.hasPrefix("skip:") { throw XCTSkip("cannot mount in a private namespace here: \(out)") }
        let r = Dictionary(out.split(separator: "\n").map { l -> (String, String) in
            let kv = l.split(separator: "=", maxSplits: 1); return (String(kv[0]), kv.count > 1 ? String(kv[1]) : "")
        }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(r["points"], "[\"\(shared)/with space\"]")
        XCTAssertEqual(r["remove"], "false")
        XCTAssertEqual(r["precious1"], "true")
        XCTAssertEqual(r["removeSlash"], "false", "a trailing slash must not bypass the mount check")
        XCTAssertEqual(r["precious2"], "true", "user data under a bind mount was deleted")
        XCTAssertEqual(r["removeDot"], "false", "a /./ path must not bypass the mount check")
        XCTAssertEqual(r["precious3"], "true", "user data under a bind mount was deleted")
        XCTAssertEqual(r["prefixPoints"], "0")
        XCTAssertEqual(r["points2"], "0")
        XCTAssertTrue(Posix.exists(src + "/precious"))

        // Back in our namespace nothing is mounted there, so removal proceeds.
        XCTAssertEqual(SharedDirectory.mountPoints(under: dir), [])
        XCTAssertTrue(SharedDirectory.remove(shared))
        XCTAssertFalse(Posix.exists(shared))
    }
}
