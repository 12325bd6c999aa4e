import CShims
import Foundation
import XCTest

/// `kata-runtime run` through the QEMU backend: output, exit codes, stdin, the guest kernel.
final class RunTests: XCTestCase {
    var h: Harness!

    override func setUpWithError() throws {
        try Harness.requireVMs()
        h = try Harness()
    }

    override func tearDown() { h?.assertClean() }

    func testRunRelaysStdoutStderrAndExitZero() throws {
        let b = try h.bundle(args: ["sh", "-c", "echo out-line; echo err-line >&2"])
        let r = try h.run(["run", "c1"], cwd: b)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "out-line\n")
        XCTAssertEqual(r.stderr, "err-line\n")
    }

    func testExitStatusIsTheProcessStatus() throws {
        let b = try h.bundle(args: ["sh", "-c", "exit 3"])
        XCTAssertEqual(try h.run(["run", "--bundle", b, "c3"]).status, 3)
    }

    func testSignalDeathGives128PlusSignal() throws {
        // Without a pid namespace the shell is not a namespace init, so it can kill itself.
        let b = try h.bundle(args: ["sh", "-c", "kill -KILL $$"], pidNamespace: false)
        XCTAssertEqual(try h.run(["run", "--bundle", b, "sig"]).status, 137)
    }

    func testGuestKernelIsNotTheHostKernel() throws {
        let b = try h.bundle(args: ["uname", "-r"])
        let r = try h.run(["run", "--bundle", b, "uname"])
        XCTAssertEqual(r.status, 0, r.stderr)
        var u = utsname()
        uname(&u)
        let host = withUnsafeBytes(of: u.release) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        let guest = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(guest.isEmpty)
        XCTAssertNotEqual(guest, host)
        XCTAssertTrue(guest.hasSuffix("-kata"), guest)
    }

    func testStdinReachesTheContainer() throws {
        let b = try h.bundle(args: ["sh", "-c", "cat; echo done"])
        let input = (0..<2000).map { "line \($0)" }.joined(separator: "\n") + "\n"
        let r = try h.run(["run", "--bundle", b, "stdin"], stdin: input)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, input + "done\n")
    }

    func testLargeOutputArrivesWhole() throws {
        // ~4 MB through the flow-controlled stream.
        let b = try h.bundle(args: ["sh", "-c", "i=0; while [ $i -lt 4000 ]; do echo \"$i aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"; i=$((i+1)); done"])
        let r = try h.run(["run", "--bundle", b, "big"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 4000)
        XCTAssertEqual(lines.first?.hasPrefix("0 a"), true)
        XCTAssertEqual(lines.last?.hasPrefix("3999 a"), true)
    }

    func testContainerSeesItsConfig() throws {
        let b = try h.bundle(args: ["sh", "-c", "hostname; ulimit -n; pwd; ls /dev | tr '\\n' ' '; echo; cat /proc/1/cmdline | tr '\\0' ' '"])
        let r = try h.run(["run", "--bundle", b, "cfg"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "kata-e2e")
        XCTAssertEqual(lines.dropFirst().first, "1024")
        XCTAssertEqual(lines.dropFirst(2).first, "/")
        for dev in ["null", "zero", "full", "random", "urandom", "tty", "pts", "shm"] {
            XCTAssertTrue(lines.dropFirst(3).first?.split(separator: " ").contains(Substring(dev)) ?? false, "missing /dev/\(dev): \(r.stdout)")
        }
        // The container has its own pid namespace: its process is PID 1.
        XCTAssertEqual(lines.last?.hasPrefix("sh -c hostname"), true, r.stdout)
    }

    func testBindMountFromTheBundle() throws {
        let data = h.work + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try "from-host\n".write(toFile: data + "/file", atomically: true, encoding: .utf8)
        let b = try h.bundle(args: ["sh", "-c", "cat /data/file; echo from-guest > /data/back"]) { c in
            var mounts = c["mounts"] as! [[String: Any]]
            mounts.append(["destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw"]])
            c["mounts"] = mounts
        }
        let r = try h.run(["run", "--bundle", b, "bind"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "from-host\n")
        XCTAssertEqual(h.read(data + "/back"), "from-guest\n")
    }
}
