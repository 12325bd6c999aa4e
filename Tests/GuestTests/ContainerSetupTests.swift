import XCTest
import TestSupport
#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import OCI
@testable import Guest

func jsonString(_ s: String) -> String { JSONWriter.quote(s) }

func makeSpec(args: [String], env: [String] = ["PATH=/bin"], extra: String = "") throws -> Spec {
    let doc = """
    {
      "ociVersion": "1.2.0",
      "process": {
        "args": [\(args.map(jsonString).joined(separator: ", "))],
        "env": [\(env.map(jsonString).joined(separator: ", "))],
        "cwd": "/",
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
      },
      "root": {"path": "rootfs"}\(extra)
    }
    """
    return try SpecParser.parse(Array(doc.utf8))
}

/// Mount points at or below `dir` in this process's mount namespace.
func mountsUnder(_ dir: String) -> [String] {
    guard let b = try? Posix.readFile("/proc/self/mountinfo") else { return [] }
    return String(decoding: b, as: UTF8.self).split(separator: "\n").compactMap { line in
        let f = line.split(separator: " ")
        guard f.count > 4 else { return nil }
        let mp = String(f[4])
        return mp == dir || mp.hasPrefix(dir + "/") ? mp : nil
    }
}

final class LookupExecutableTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir("kata-lookup") }
    override func tearDown() { Posix.removeAll(dir) }

    func lookup(_ name: String, path: String?) throws(SetupError) -> String {
        let spec = try! makeSpec(args: [name], env: path.map { ["A=1", "PATH=" + $0] } ?? ["A=1"])
        return try ContainerSetup(spec: spec, rootfs: dir, binds: []).lookupExecutable()
    }

    func testMissingExecutable() {
        XCTAssertThrowsError(try lookup("definitely-not-a-command", path: dir + ":/nonexistent")) { e in
            XCTAssertEqual("\(e)", #"exec: "definitely-not-a-command": executable file not found in $PATH"#)
        }
    }

    func testDirectoriesAndNonExecutablesAreSkipped() throws {
        try Posix.mkdirAll(dir + "/d1/tool")          // a directory named like the command
        try Posix.mkdirAll(dir + "/d2")
        writeFile(dir + "/d2/tool", "data", mode: 0o644)  // not executable
        try Posix.mkdirAll(dir + "/d3")
        writeFile(dir + "/d3/tool", "#!/bin/sh\n", mode: 0o755)
        XCTAssertEqual(try lookup("tool", path: "\(dir)/d1:\(dir)/d2:\(dir)/d3"), dir + "/d3/tool")
        XCTAssertThrowsError(try lookup("tool", path: "\(dir)/d1:\(dir)/d2")) { e in
            XCTAssertTrue("\(e)".hasSuffix("executable file not found in $PATH"), "\(e)")
        }
    }

    func testPathsWithSlashAndDefaultPATH() throws {
        writeFile(dir + "/x", "#!/bin/sh\n", mode: 0o755)
        XCTAssertEqual(try lookup(dir + "/x", path: "/nonexistent"), dir + "/x")
        XCTAssertThrowsError(try lookup(dir + "/missing", path: nil)) { e in
            XCTAssertTrue("\(e)".contains(#"exec: ""# + dir + #"/missing""#), "\(e)")
        }
        // No PATH in the environment: the standard one is used, as runc does.
        let sh = try lookup("sh", path: nil)
        XCTAssertTrue(sh.hasSuffix("/sh") && Posix.exists(sh), sh)
    }
}

final class ContainerSetupTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir("kata-setup") }
    override func tearDown() {
        // Should never be needed: the child mounts in its own namespace.
        for m in mountsUnder(dir).reversed() { _ = umount2(m, 2) }
        Posix.removeAll(dir)
    }

    func requireRoot() throws {
        guard getuid() == 0 else { throw XCTSkip("container setup needs root (running as uid \(getuid()))") }
        let (out, _) = runInChild { fd in
            emit(fd, kata_unshare(0x0002_0000) == 0 ? "ok" : String(cString: strerror(errno)))
            return 0
        }
        guard out == "ok" else { throw XCTSkip("cannot create a mount namespace here: \(out)") }
    }

    func testSetupErrorsAreReadable() throws {
        try requireRoot()
        let spec = try makeSpec(args: ["sh"], extra: #", "linux": {"namespaces": [{"type": "mount"}]}"#)
        let missing = dir + "/no-such-rootfs"
        let (out, st) = runInChild { fd in
            do {
                let s = try ContainerSetup(spec: spec, rootfs: missing, binds: [])
                _ = try s.prepare()
                emit(fd, "prepared")
            } catch { emit(fd, "\(error)") }
            return 0
        }
        XCTAssertEqual(describeWaitStatus(st), "exit 0")
        XCTAssertEqual(out, "bind rootfs \(missing): No such file or directory")

        let user = try makeSpec(args: ["sh"], extra: #", "linux": {"namespaces": [{"type": "mount"}, {"type": "user"}]}"#)
        let (out2, _) = runInChild { fd in
            do { _ = try ContainerSetup(spec: user, rootfs: dir, binds: []).prepare(); emit(fd, "prepared") }
            catch { emit(fd, "\(error)") }
            return 0
        }
        XCTAssertEqual(out2, "user namespaces are not supported yet")
        XCTAssertEqual(mountsUnder(dir), [])
    }

    func testBusyboxContainerEndToEnd() throws {
        try requireRoot()
        guard Posix.exists("/bin/busybox") else {
            throw XCTSkip("/bin/busybox missing (apt-get install busybox-static)")
        }
        let rootfs = dir + "/rootfs"
        for d in ["bin", "proc", "dev", "tmp", "ro", "masked", "etc"] { try Posix.mkdirAll(rootfs + "/" + d) }
        let bb = try Posix.readFile("/bin/busybox")
        try Posix.writeFileAtomic(rootfs + "/bin/busybox", bb, mode: 0o755)
        for applet in ["sh", "hostname", "cat", "wc", "ls", "echo", "test", "pwd"] {
            XCTAssertEqual(symlink("busybox", rootfs + "/bin/" + applet), 0)
        }
        writeFile(rootfs + "/ro/f", "original\n")
        writeFile(rootfs + "/masked/hidden", "hidden\n")
        writeFile(rootfs + "/etc/secret", "TOPSECRET\n")
        var hostName = [CChar](repeating: 0, count: 256)
        gethostname(&hostName, 255)
        let hostBefore = String(cString: hostName)

        let script = """
        hostname
        ulimit -n
        cat /proc/self/mounts | wc -l
        ls /dev
        echo ok > /tmp/x && cat /tmp/x
        if echo bad 2>/dev/null > /ro/f; then echo ro=writable; else echo ro=denied; fi
        echo "rofile=$(cat /ro/f)"
        echo "secret=$(cat /etc/secret)"
        echo "masked=$(ls /masked)"
        if test -e /usr; then echo root=host; else echo root=pivoted; fi
        echo "pwd=$(pwd)"
        """
        let extra = """
        ,
          "hostname": "guest-test",
          "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}
          ],
          "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/etc/secret", "/masked", "/does/not/exist"],
            "readonlyPaths": ["/ro", "/proc/sys", "/not/here"]
          }
        """
        let spec = try makeSpec(args: ["busybox", "sh", "-c", script], extra: extra)

        let errPath = dir + "/stderr"
        let errFd = kata_open_mode(errPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        var p: [Int32] = [0, 0]
        XCTAssertEqual(kata_pipe2(&p, Int32(O_CLOEXEC)), 0)
        fflush(nil)
        let pid = kata_fork()
        if pid == 0 {
            dup2(p[1], 1)
            dup2(errFd, 2)
            do {
                let setup = try ContainerSetup(spec: spec, rootfs: rootfs, binds: [])
                let exe = try setup.prepare()
                let err = setup.exec(exe)
                emit(2, "exec failed: \(err)\n")
                _exit(126)
            } catch {
                emit(2, "setup failed: \(error)\n")
                _exit(125)
            }
        }
        close(p[1]); close(errFd)
        var out: [UInt8] = []
        let deadline = Posix.monotonicNanos() + 60_000_000_000
        while Posix.monotonicNanos() < deadline {
            var pfd = pollfd(fd: p[0], events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 1000) <= 0 { continue }
            guard let c = try? Posix.readSome(p[0]), !c.isEmpty else { break }
            out += c
        }
        close(p[0])
        if Posix.monotonicNanos() >= deadline { kill(pid, SIGKILL) }
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        let stdoutText = String(decoding: out, as: UTF8.self)
        let stderrText = readText(errPath) ?? ""
        let context = "status: \(describeWaitStatus(st))\nstdout:\n\(stdoutText)\nstderr:\n\(stderrText)"

        // Nothing the child mounted is visible here.
        XCTAssertEqual(mountsUnder(dir), [], context)
        gethostname(&hostName, 255)
        XCTAssertEqual(String(cString: hostName), hostBefore, "the host's hostname changed")

        XCTAssertEqual(describeWaitStatus(st), "exit 0", context)
        let lines = stdoutText.split(separator: "\n").map(String.init)
        guard lines.count >= 4 else { XCTFail(context); return }
        XCTAssertEqual(lines[0], "guest-test", context)
        XCTAssertEqual(lines[1], "1024", context)
        XCTAssertGreaterThan(Int(lines[2].trimmingSpaces) ?? 0, 0, context)
        let okIndex = lines.firstIndex(of: "ok") ?? lines.count
        let dev = Set(lines[3..<okIndex].flatMap { $0.split(separator: " ").map(String.init) })
        for n in ["null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "fd", "stdin", "stdout", "stderr"] {
            XCTAssertTrue(dev.contains(n), "/dev lacks \(n): \(dev.sorted())")
        }
        XCTAssertTrue(lines.contains("ok"), "tmpfs /tmp is writable\n" + context)
        XCTAssertTrue(lines.contains("ro=denied"), "readonly path was writable\n" + context)
        XCTAssertTrue(lines.contains("rofile=original"), context)
        XCTAssertTrue(lines.contains("secret="), "masked file readable\n" + context)
        XCTAssertTrue(lines.contains("masked="), "masked directory listable\n" + context)
        XCTAssertTrue(lines.contains("root=pivoted"), "host / visible\n" + context)
        XCTAssertTrue(lines.contains("pwd=/"), context)
        // The rootfs on the host is untouched by the container's writes.
        XCTAssertEqual(readText(rootfs + "/ro/f"), "original\n")
        XCTAssertEqual(readText(rootfs + "/etc/secret"), "TOPSECRET\n")
        XCTAssertFalse(Posix.exists(rootfs + "/tmp/x"), "/tmp write reached the rootfs instead of the tmpfs")
    }
}

extension String {
    var trimmingSpaces: String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}
