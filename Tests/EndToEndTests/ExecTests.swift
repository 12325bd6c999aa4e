import CShims
import Foundation
import XCTest

/// `exec` into a running container, as docker exec and podman exec use it.
final class ExecTests: XCTestCase {
    var h: Harness!
    var bundle = ""

    override func setUpWithError() throws {
        try Harness.requireVMs()
        h = try Harness()
        _ = kata_set_child_subreaper()  // detached relays are re-parented to us, as to a shim
        bundle = try h.bundle(args: ["sleep", "1000"])
        let r = try h.runDetached(["run", "-d", "--bundle", bundle, "box"], name: "run")
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    override func tearDown() {
        if let h { _ = try? h.run(["delete", "--force", "box"]); h.assertClean() }
    }

    func testExecRelaysOutputAndStatus() throws {
        let r = try h.run(["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 5"])
        XCTAssertEqual(r.status, 5)
        XCTAssertEqual(r.stdout, "out\n")
        XCTAssertEqual(r.stderr, "err\n")
    }

    func testExecSeesTheContainer() throws {
        // Same hostname, same pid namespace (the init is PID 1), same filesystem.
        XCTAssertEqual(try h.run(["exec", "box", "sh", "-c", "echo x > /tmp/shared"]).status, 0)
        let r = try h.run(["exec", "box", "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /tmp/shared"])
        XCTAssertEqual(r.stdout, "kata-e2e\nsleep 1000 \nx\n", r.stderr)
    }

    func testExecStdinEnvCwdUser() throws {
        XCTAssertEqual(try h.run(["exec", "box", "cat"], stdin: "piped\n").stdout, "piped\n")
        let r = try h.run(["exec", "-e", "FOO=bar", "--cwd", "/tmp", "-u", "1000:1001", "-g", "5", "box",
                           "sh", "-c", "echo $FOO; pwd; id -u; id -g; id -G"])
        XCTAssertEqual(r.stdout, "bar\n/tmp\n1000\n1001\n1001 5\n", r.stderr)
    }

    func testExecWithProcessFile() throws {
        let process: [String: Any] = ["terminal": false, "user": ["uid": 0, "gid": 0], "args": ["sh", "-c", "echo from-file; exit 2"],
                                      "env": ["PATH=/bin"], "cwd": "/"]
        let path = h.work + "/process.json"
        try JSONSerialization.data(withJSONObject: process).write(to: URL(fileURLWithPath: path))
        let r = try h.run(["exec", "--process", path, "box"])
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stdout, "from-file\n")
    }

    func testDetachedExecRelayExitsWithTheStatus() throws {
        let pidFile = h.work + "/exec.pid"
        let r = try h.runDetached(["exec", "-d", "--pid-file", pidFile, "box", "sh", "-c", "sleep 0.5; exit 6"], name: "exec")
        XCTAssertEqual(r.status, 0, r.stderr)
        let pid = try XCTUnwrap(Int32(h.read(pidFile)))
        var st: Int32 = 0
        XCTAssertEqual(waitpid(pid, &st, 0), pid)
        XCTAssertEqual(kata_wexitstatus(st), 6)
    }

    func testTwentyConcurrentExecs() throws {
        let group = DispatchGroup()
        let lock = NSLock()
        var results: [Int: Harness.Result] = [:]
        for i in 0..<20 {
            DispatchQueue.global().async(group: group) {
                let r = try? self.h.run(["exec", "box", "sh", "-c", "echo exec-\(i); exit \(i)"])
                lock.lock(); results[i] = r; lock.unlock()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success)
        for i in 0..<20 {
            XCTAssertEqual(results[i]?.stdout, "exec-\(i)\n", "exec \(i): \(results[i]?.stderr ?? "no result")")
            XCTAssertEqual(results[i]?.status, Int32(i))
        }
    }

    func testExecErrors() throws {
        let missing = try h.run(["exec", "box", "no-such-program"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("executable file not found"), missing.stderr)
        XCTAssertTrue(try h.run(["exec", "box"]).stderr.contains("exec args cannot be empty"))
        XCTAssertTrue(try h.run(["exec", "ghost", "true"]).stderr.contains("does not exist"))
        XCTAssertTrue(try h.run(["exec", "-u", "nobody", "box", "true"]).stderr.contains("--user"))
        XCTAssertEqual(try h.run(["kill", "box", "KILL"]).status, 0)
        for _ in 0..<100 where (try? h.stateJSON("box")["status"] as? String) != "stopped" { usleep(50_000) }
        let stopped = try h.run(["exec", "box", "true"])
        XCTAssertNotEqual(stopped.status, 0)
        XCTAssertTrue(stopped.stderr.contains("stopped"), stopped.stderr)
    }

    func testTwoContainersAtOnce() throws {
        let other = try h.bundle("other", args: ["sleep", "1000"])
        XCTAssertEqual(try h.runDetached(["run", "-d", "--bundle", other, "second"], name: "run2").status, 0)
        XCTAssertEqual(try h.run(["exec", "second", "echo", "two"]).stdout, "two\n")
        XCTAssertEqual(try h.run(["exec", "box", "echo", "one"]).stdout, "one\n")
        XCTAssertEqual(try h.run(["delete", "-f", "second"]).status, 0)
    }
}
