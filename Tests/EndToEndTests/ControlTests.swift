import CShims
import Foundation
import XCTest

/// pause/resume, ps, top, events, update, kill --all, features and env, compared with
/// runc's shapes where runc has the command.
final class ControlTests: XCTestCase {
    var h: Harness!

    override func setUpWithError() throws {
        try Harness.requireVMs()
        h = try Harness()
        _ = kata_set_child_subreaper()
        let b = try h.bundle(args: ["sh", "-c", "while true; do echo tick >> /tmp/ticks; sleep 0.1; done"])
        XCTAssertEqual(try h.runDetached(["run", "-d", "--bundle", b, "box"], name: "run").status, 0)
    }

    override func tearDown() {
        if let h { _ = try? h.run(["delete", "--force", "box"]); h.assertClean() }
    }

    func ticks() throws -> Int {
        Int(try h.run(["exec", "box", "sh", "-c", "wc -l < /tmp/ticks"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    func testPauseFreezesAndResumeThaws() throws {
        usleep(500_000)
        XCTAssertEqual(try h.run(["pause", "box"]).status, 0)
        XCTAssertEqual(try h.stateJSON("box")["status"] as? String, "paused")
        let exec = try h.run(["exec", "box", "true"])
        XCTAssertTrue(exec.stderr.contains("paused"), exec.stderr)
        XCTAssertTrue(try h.run(["pause", "box"]).stderr.contains("not running"))
        XCTAssertTrue(try h.run(["delete", "box"]).stderr.contains("not stopped"))
        // Frozen: the loop writes nothing while paused. Resume, then count twice.
        XCTAssertEqual(try h.run(["resume", "box"]).status, 0)
        let a = try ticks()
        XCTAssertEqual(try h.run(["pause", "box"]).status, 0)
        usleep(800_000)
        XCTAssertEqual(try h.run(["resume", "box"]).status, 0)
        let b = try ticks()
        XCTAssertLessThanOrEqual(b - a, 3, "the container ran while paused: \(a) -> \(b)")
        XCTAssertEqual(try h.stateJSON("box")["status"] as? String, "running")
        XCTAssertTrue(try h.run(["resume", "box"]).stderr.contains("not paused"))
        usleep(500_000)
        XCTAssertGreaterThan(try ticks(), b, "the container must run again after resume")
    }

    func testPsListsHostPIDsAndTopTheGuestView() throws {
        let st = try h.stateJSON("box")
        let json = try h.run(["ps", "--format", "json", "box"])
        let pids = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [Int]
        XCTAssertEqual(pids?.first, (st["pid"] as? NSNumber)?.intValue, json.stdout)
        let table = try h.run(["ps", "box"]).stdout.split(separator: "\n")
        XCTAssertTrue(table.first?.contains("PID") ?? false)
        XCTAssertTrue(table.dropFirst().contains { $0.contains("keeper") }, "\(table)")
        // The face's stand-in carries the init's command line, so `docker top` shows it.
        XCTAssertTrue(table.dropFirst().contains { $0.hasSuffix("sh -c while true; do echo tick >> /tmp/ticks; sleep 0.1; done") }, "\(table)")
        let top = try h.run(["top", "box"]).stdout
        XCTAssertTrue(top.contains("sh -c while true"), top)
        XCTAssertTrue(top.hasPrefix("UID"), top)
    }

    func testEventsStatsHaveRuncShape() throws {
        let r = try h.run(["events", "--stats", "box"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let e = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(e["type"] as? String, "stats")
        XCTAssertEqual(e["id"] as? String, "box")
        let data = try XCTUnwrap(e["data"] as? [String: Any])
        let cpu = try XCTUnwrap((data["cpu"] as? [String: Any])?["usage"] as? [String: Any])
        XCTAssertGreaterThan((cpu["total"] as? NSNumber)?.int64Value ?? 0, 0)
        let mem = try XCTUnwrap((data["memory"] as? [String: Any])?["usage"] as? [String: Any])
        XCTAssertGreaterThan((mem["usage"] as? NSNumber)?.int64Value ?? 0, 0)
        XCTAssertGreaterThanOrEqual(((data["pids"] as? [String: Any])?["current"] as? NSNumber)?.intValue ?? 0, 1)
    }

    func testUpdateLimitsReachTheGuest() throws {
        XCTAssertEqual(try h.run(["update", "--memory", "64m", "--pids-limit", "20", "box"]).status, 0)
        var data = try statsData()
        XCTAssertEqual(((data["memory"] as? [String: Any])?["usage"] as? [String: Any])?["limit"] as? Int, 64 << 20)
        XCTAssertEqual((data["pids"] as? [String: Any])?["limit"] as? Int, 20)
        let res = h.work + "/res.json"
        try #"{"pids":{"limit":30}}"#.write(toFile: res, atomically: true, encoding: .utf8)
        XCTAssertEqual(try h.run(["update", "--resources", res, "box"]).status, 0)
        data = try statsData()
        XCTAssertEqual((data["pids"] as? [String: Any])?["limit"] as? Int, 30)
        XCTAssertNotEqual(try h.run(["update", "--memory", "lots", "box"]).status, 0)
    }

    func statsData() throws -> [String: Any] {
        let r = try h.run(["events", "--stats", "box"])
        return try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["data"] as? [String: Any])
    }

    func testKillAllReachesEveryProcess() throws {
        // A second process via exec; kill --all KILL ends both, and the container stops.
        let pidFile = h.work + "/e.pid"
        XCTAssertEqual(try h.runDetached(["exec", "-d", "--pid-file", pidFile, "box", "sleep", "1000"], name: "exec").status, 0)
        let relay = try XCTUnwrap(Int32(h.read(pidFile)))
        XCTAssertEqual(try h.run(["kill", "--all", "box", "KILL"]).status, 0)
        var st: Int32 = 0
        XCTAssertEqual(waitpid(relay, &st, 0), relay)
        XCTAssertEqual(kata_wexitstatus(st), 137)
        for _ in 0..<100 where (try? h.stateJSON("box")["status"] as? String) != "stopped" { usleep(50_000) }
        XCTAssertEqual(try h.stateJSON("box")["status"] as? String, "stopped")
    }

    func testFeaturesAndEnv() throws {
        let f = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try h.run(["features"]).stdout.utf8)) as? [String: Any])
        XCTAssertEqual(f["ociVersionMin"] as? String, "1.0.0")
        XCTAssertEqual((f["hooks"] as? [String])?.count, 6)
        let linux = try XCTUnwrap(f["linux"] as? [String: Any])
        XCTAssertTrue((linux["namespaces"] as? [String])?.contains("pid") ?? false)
        XCTAssertEqual((linux["seccomp"] as? [String: Any])?["enabled"] as? Bool, true)
        let env = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try h.run(["env", "--json"]).stdout.utf8)) as? [String: Any])
        XCTAssertNotNil((env["Hypervisor"] as? [String: Any])?["Backend"])
        XCTAssertTrue(((env["Guest"] as? [String: Any])?["KernelRelease"] as? String)?.hasSuffix("-kata") ?? false, "\(env)")
        XCTAssertTrue(try h.run(["env"]).stdout.contains("[Runtime]"))
    }
}
