import XCTest
import TestSupport
#if canImport(Glibc)
import Glibc
#endif
import Agent
@testable import Guest

/// mount(2) values from <linux/mount.h>, written out so the test checks them independently.
enum MS {
    static let rdonly: UInt = 1, nosuid: UInt = 2, nodev: UInt = 4, noexec: UInt = 8
    static let rec: UInt = 0x4000, privateProp: UInt = 0x40000, slave: UInt = 0x80000, shared: UInt = 0x100000
    static let strictatime: UInt = 0x1000000, relatime: UInt = 0x200000, noatime: UInt = 0x400
}

final class MountOptionsTests: XCTestCase {
    func testTmpfsStyleOptions() throws {
        let o = MountOptions(["nosuid", "noexec", "nodev", "ro", "mode=755", "size=65536k"])
        XCTAssertEqual(o.flags, MS.nosuid | MS.noexec | MS.nodev | MS.rdonly)
        XCTAssertEqual(o.clearFlags, 0)
        XCTAssertEqual(o.data, ["mode=755", "size=65536k"])
        XCTAssertEqual(o.dataString, "mode=755,size=65536k")
        XCTAssertEqual(o.propagation, [])
        XCTAssertFalse(o.bind)
        XCTAssertFalse(o.recursive)
    }

    func testRbindRprivate() throws {
        let o = MountOptions(["rbind", "rprivate"])
        XCTAssertTrue(o.bind)
        XCTAssertTrue(o.recursive)
        XCTAssertEqual(o.flags, 0)
        XCTAssertEqual(o.propagation, [MS.privateProp | MS.rec])
        XCTAssertEqual(o.data, [])
        XCTAssertEqual(o.dataString, "")
    }

    func testClearingOptions() throws {
        let o = MountOptions(["rw", "exec"])
        XCTAssertEqual(o.flags, 0)
        XCTAssertEqual(o.clearFlags, MS.rdonly | MS.noexec)
        XCTAssertEqual(o.data, [])
    }

    func testLaterOptionWins() throws {
        let a = MountOptions(["ro", "rw"])
        XCTAssertEqual(a.flags & MS.rdonly, 0)
        XCTAssertEqual(a.clearFlags & MS.rdonly, MS.rdonly)
        let b = MountOptions(["rw", "ro"])
        XCTAssertEqual(b.flags & MS.rdonly, MS.rdonly)
        XCTAssertEqual(b.clearFlags & MS.rdonly, 0)
    }

    func testBindAndPropagationsAndDevpts() throws {
        let b = MountOptions(["bind", "ro", "shared", "rslave"])
        XCTAssertTrue(b.bind)
        XCTAssertFalse(b.recursive)
        XCTAssertEqual(b.flags, MS.rdonly)
        XCTAssertEqual(b.propagation, [MS.shared, MS.slave | MS.rec])
        let d = MountOptions(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])
        XCTAssertEqual(d.flags, MS.nosuid | MS.noexec)
        XCTAssertEqual(d.dataString, "newinstance,ptmxmode=0666,mode=0620,gid=5")
        let t = MountOptions(["strictatime", "relatime", "noatime"])
        XCTAssertEqual(t.flags, MS.strictatime | MS.relatime | MS.noatime)
        XCTAssertEqual(t.data, [])
    }
}

final class SecureJoinTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = makeTempDir("kata-sj")
        for d in ["usr/lib", "a/b/c", "etc"] { try Posix.mkdirAll(root + "/" + d) }
    }

    override func tearDown() { Posix.removeAll(root) }

    func link(_ target: String, _ name: String) {
        XCTAssertEqual(symlink(target, root + "/" + name), 0, "symlink \(name)")
    }

    /// The result must name something inside the root even after the kernel follows symlinks.
    func assertContained(_ p: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(p == root || p.hasPrefix(root + "/"), "\(p) is not under \(root)", file: file, line: line)
        // Follow what exists of the path, as open(2) would.
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        var probe = p
        while !probe.isEmpty {
            if let r = realpath(probe, &buf) {
                let real = String(cString: r)
                let realRoot = String(cString: realpath(root, nil)!)
                XCTAssertTrue(real == realRoot || real.hasPrefix(realRoot + "/"),
                              "\(p) resolves to \(real), outside the root", file: file, line: line)
                return
            }
            if errno == ELOOP { return }  // the kernel refuses it: not an escape
            guard let slash = probe.lastIndex(of: "/") else { return }
            probe = String(probe[..<slash])
        }
    }

    func testPlainPaths() throws {
        XCTAssertEqual(try SecureJoin.join(root, "/a/b/c"), root + "/a/b/c")
        XCTAssertEqual(try SecureJoin.join(root, "a//b/./c/"), root + "/a/b/c")
        XCTAssertEqual(try SecureJoin.join(root, "/"), root + "/")
        XCTAssertEqual(try SecureJoin.join(root, "/not/yet/created"), root + "/not/yet/created")
        XCTAssertEqual(try SecureJoin.join(root + "/", "/a"), root + "/a")
    }

    func testSymlinkToEtcResolvesUnderRoot() throws {
        link("/etc", "hostetc")
        let p = try SecureJoin.join(root, "/hostetc/passwd")
        XCTAssertEqual(p, root + "/etc/passwd")
        assertContained(p)
    }

    func testDotDotCannotClimbAboveRoot() throws {
        XCTAssertEqual(try SecureJoin.join(root, "/../../../etc/passwd"), root + "/etc/passwd")
        XCTAssertEqual(try SecureJoin.join(root, "/a/b/../../../../../usr/lib"), root + "/usr/lib")
        XCTAssertEqual(try SecureJoin.join(root, "a/b/c/.."), root + "/a/b")
        link("../../../../../../../etc", "a/b/up")
        let p = try SecureJoin.join(root, "/a/b/up/shadow")
        XCTAssertEqual(p, root + "/etc/shadow")
        assertContained(p)
    }

    func testAbsoluteSymlinksAreRerooted() throws {
        link("/usr/lib", "lib")
        link("/lib/x86_64", "a/arch")
        XCTAssertEqual(try SecureJoin.join(root, "/lib/libc.so"), root + "/usr/lib/libc.so")
        XCTAssertEqual(try SecureJoin.join(root, "/a/arch"), root + "/usr/lib/x86_64")
        link("c", "a/b/rel")  // relative: resolved from the link's own directory
        XCTAssertEqual(try SecureJoin.join(root, "/a/b/rel/file"), root + "/a/b/c/file")
        link("../b/c", "a/b/rel2")
        XCTAssertEqual(try SecureJoin.join(root, "/a/b/rel2"), root + "/a/b/c")
    }

    func testSymlinkLoopsTerminate() throws {
        link("loop2", "loop1")
        link("loop1", "loop2")
        link("self", "self")
        let t0 = Posix.monotonicNanos()
        XCTAssertThrowsError(try SecureJoin.join(root, "/loop1/x")) { XCTAssertTrue("\($0)".contains("symbolic links")) }
        XCTAssertThrowsError(try SecureJoin.join(root, "/self"))
        XCTAssertLessThan(Posix.monotonicNanos() - t0, 5_000_000_000)
    }

    func testAbsoluteSelfLoopDoesNotEscape() throws {
        // A hostile rootfs: /etc -> /etc. Inside the root it loops; the joined path
        // must not be one that the kernel resolves through the link to the host's /etc.
        rmdir(root + "/etc")
        link("/etc", "etc")
        // Resolving it can only loop; the join must fail rather than hand back root/etc/passwd.
        XCTAssertThrowsError(try SecureJoin.join(root, "/etc/passwd"))
    }
}
