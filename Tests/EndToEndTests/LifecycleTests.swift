import CShims
import Foundation
import XCTest

/// create / state / start / kill / delete with runc's semantics, and the --pid-file process
/// that docker's shim and podman's conmon reap.
final class LifecycleTests: XCTestCase {
    var h: Harness!

    override func setUpWithError() throws {
        try Harness.requireVMs()
        h = try Harness()
        // Become a subreaper so the keeper (child of `create`) is re-parented to us, as it is
        // to containerd-shim or conmon, and we can collect its exit status.
        _ = kata_set_child_subreaper()
    }

    override func tearDown() { h?.assertClean() }

    func waitExit(_ pid: Int32, seconds: Double = 30) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            var st: Int32 = 0
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid { return kata_wifexited(st) != 0 ? kata_wexitstatus(st) : 128 + kata_wtermsig(st) }
            usleep(20_000)
        }
        return nil
    }

    func testSplitLifecycleWithStateTransitions() throws {
        let b = try h.bundle(args: ["sh", "-c", "echo started > /tmp/started; sleep 1000"])
        let pidFile = h.work + "/c.pid"
        let c = try h.runDetached(["create", "--bundle", b, "--pid-file", pidFile, "life"], name: "create")
        XCTAssertEqual(c.status, 0, c.stderr)
        let pid = try XCTUnwrap(Int32(h.read(pidFile)))
        XCTAssertEqual(kill(pid, 0), 0, "pid-file process must be alive")

        var st = try h.stateJSON("life")
        XCTAssertEqual(st["status"] as? String, "created")
        XCTAssertEqual(st["id"] as? String, "life")
        XCTAssertEqual((st["pid"] as? NSNumber)?.int32Value, pid)
        XCTAssertEqual(st["bundle"] as? String, b)
        XCTAssertEqual(st["rootfs"] as? String, b + "/rootfs")
        XCTAssertNotNil(st["created"] as? String)
        XCTAssertEqual(st["ociVersion"] as? String, "1.0.2")

        let s = try h.run(["start", "life"])
        XCTAssertEqual(s.status, 0, s.stderr)
        st = try h.stateJSON("life")
        XCTAssertEqual(st["status"] as? String, "running")

        let again = try h.run(["start", "life"])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("already running"), again.stderr)

        let del = try h.run(["delete", "life"])
        XCTAssertNotEqual(del.status, 0, "delete of a running container needs --force")
        XCTAssertTrue(del.stderr.contains("not stopped"), del.stderr)

        let k = try h.run(["kill", "life", "KILL"])
        XCTAssertEqual(k.status, 0, k.stderr)
        XCTAssertEqual(waitExit(pid), 137, "the pid-file process exits with the container's status")
        st = try h.stateJSON("life")
        XCTAssertEqual(st["status"] as? String, "stopped")

        let killStopped = try h.run(["kill", "life"])
        XCTAssertNotEqual(killStopped.status, 0)
        let startStopped = try h.run(["start", "life"])
        XCTAssertNotEqual(startStopped.status, 0)
        XCTAssertTrue(startStopped.stderr.contains("stopped"), startStopped.stderr)

        XCTAssertEqual(try h.run(["delete", "life"]).status, 0)
        XCTAssertNotEqual(try h.run(["state", "life"]).status, 0)
    }

    func testPidFileProcessExitsWithContainerStatus() throws {
        let b = try h.bundle(args: ["sh", "-c", "exit 42"])
        let pidFile = h.work + "/p.pid"
        XCTAssertEqual(try h.runDetached(["create", "--bundle", b, "--pid-file", pidFile, "status"], name: "c").status, 0)
        let pid = try XCTUnwrap(Int32(h.read(pidFile)))
        XCTAssertEqual(try h.run(["start", "status"]).status, 0)
        XCTAssertEqual(waitExit(pid), 42)
        XCTAssertEqual(try h.stateJSON("status")["status"] as? String, "stopped")
        XCTAssertEqual(try h.run(["delete", "status"]).status, 0)
    }

    /// `podman top` (psgo) joins the pid-file process's mount namespace and lists /proc there:
    /// it must find one process standing for the container's init, with the init's command
    /// line, name and user, and none of the host's. The stand-in ends with the container.
    func testThePidFileProcessShowsPsgoAStandInForTheInit() throws {
        let b = try h.bundle("standin", args: ["sleep", "1000"]) { c in
            var p = c["process"] as? [String: Any] ?? [:]
            p["user"] = ["uid": 1000, "gid": 1000]
            c["process"] = p
        }
        let pidFile = h.work + "/s.pid"
        XCTAssertEqual(try h.runDetached(["create", "--bundle", b, "--pid-file", pidFile, "standin"], name: "c").status, 0)
        let face = try XCTUnwrap(Int32(h.read(pidFile)))
        let proc = "/proc/\(face)/root/proc"
        let listed = try FileManager.default.contentsOfDirectory(atPath: proc).filter { Int($0) != nil }
        XCTAssertEqual(listed, ["1"], "psgo would list these processes")
        XCTAssertEqual(h.read(proc + "/1/cmdline"), "sleep\u{0}1000\u{0}")
        let status = h.read(proc + "/1/status")
        XCTAssertTrue(status.contains("Name:\tsleep\n"), status)
        XCTAssertTrue(status.contains("Uid:\t1000\t1000\t1000\t1000\n"), status)
        XCTAssertTrue(status.contains("CapBnd:\t0000000000000000\n") && status.contains("NoNewPrivs:\t1\n"), status)
        // On the host it is the face's child, holding nothing but its pipe.
        let children = h.read("/proc/\(face)/task/\(face)/children").split(separator: " ").compactMap { Int32($0) }
        let standIn = try XCTUnwrap(children.first { h.read("/proc/\($0)/comm") == "sleep\n" }, "children: \(children)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "/proc/\(standIn)/fd"), ["0"])
        XCTAssertEqual(try h.run(["delete", "--force", "standin"]).status, 0)
        XCTAssertNotNil(waitExit(face, seconds: 10))
        // The face reaps it before it exits itself: not even a zombie is left.
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/proc/\(standIn)"), "the stand-in outlived the container")
    }

    func testKillDefaultsToSIGTERMAndAcceptsNames() throws {
        let b = try h.bundle(args: ["sh", "-c", "trap 'echo got-term; exit 7' TERM; while true; do sleep 0.1; done"])
        let pidFile = h.work + "/k.pid"
        XCTAssertEqual(try h.runDetached(["create", "--bundle", b, "--pid-file", pidFile, "term"], name: "c").status, 0)
        let pid = try XCTUnwrap(Int32(h.read(pidFile)))
        XCTAssertEqual(try h.run(["start", "term"]).status, 0)
        usleep(300_000)  // let the shell install its trap
        XCTAssertNotEqual(try h.run(["kill", "term", "NOSUCHSIGNAL"]).status, 0)
        XCTAssertEqual(try h.run(["kill", "term"]).status, 0)
        XCTAssertEqual(waitExit(pid), 7)
        XCTAssertEqual(try h.run(["delete", "term"]).status, 0)
    }

    func testDeleteForceStopsARunningContainer() throws {
        let b = try h.bundle(args: ["sleep", "1000"])
        let pidFile = h.work + "/f.pid"
        XCTAssertEqual(try h.runDetached(["create", "--bundle", b, "--pid-file", pidFile, "force"], name: "c").status, 0)
        let pid = try XCTUnwrap(Int32(h.read(pidFile)))
        XCTAssertEqual(try h.run(["start", "force"]).status, 0)
        let d = try h.run(["delete", "--force", "force"])
        XCTAssertEqual(d.status, 0, d.stderr)
        XCTAssertNotNil(waitExit(pid, seconds: 5), "keeper must be gone after delete --force")
        XCTAssertNotEqual(try h.run(["state", "force"]).status, 0)
    }

    func testDeleteOfCreatedContainer() throws {
        let b = try h.bundle(args: ["true"])
        let pidFile = h.work + "/d.pid"
        XCTAssertEqual(try h.runDetached(["create", "--bundle", b, "--pid-file", pidFile, "created"], name: "c").status, 0)
        let pid = try XCTUnwrap(Int32(h.read(pidFile)))
        XCTAssertEqual(try h.run(["delete", "created"]).status, 0)
        XCTAssertNotNil(waitExit(pid, seconds: 5))
    }

    func testKilledKeeperTakesItsVMWithIt() throws {
        let b = try h.bundle(args: ["sleep", "1000"])
        let pidFile = h.work + "/v.pid"
        XCTAssertEqual(try h.runDetached(["create", "--bundle", b, "--pid-file", pidFile, "orphan"], name: "c").status, 0)
        let pid = try XCTUnwrap(Int32(h.read(pidFile)))
        XCTAssertFalse(h.leftoverProcesses().filter { $0.contains("qemu-system") }.isEmpty, "VM should be running")
        kill(pid, SIGKILL)
        XCTAssertEqual(waitExit(pid), 137)
        XCTAssertEqual(try h.stateJSON("orphan")["status"] as? String, "stopped")
        XCTAssertEqual(try h.run(["delete", "orphan"]).status, 0)
    }

    func testRunDetachAndLogJSON() throws {
        let b = try h.bundle(args: ["sleep", "1000"])
        let r = try h.runDetached(["run", "-d", "--bundle", b, "--pid-file", h.work + "/r.pid", "det"], name: "run")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try h.stateJSON("det")["status"] as? String, "running")
        let log = h.work + "/log.json"
        let bad = try h.run(["start", "det"], globals: ["--log", log, "--log-format", "json"])
        XCTAssertNotEqual(bad.status, 0)
        let line = try XCTUnwrap(h.read(log).split(separator: "\n").last)
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        XCTAssertEqual(obj?["level"] as? String, "error")
        XCTAssertTrue((obj?["msg"] as? String)?.contains("already running") ?? false, String(line))
        XCTAssertNotNil(obj?["time"] as? String)
        XCTAssertEqual(try h.run(["delete", "-f", "det"]).status, 0)
        if let pid = Int32(h.read(h.work + "/r.pid")) { _ = waitExit(pid, seconds: 5) }
    }
}
