import CShims
import Foundation
import XCTest

/// OCI hooks: each type runs at its moment with the state on stdin, args and env as given,
/// and failures follow the runtime spec.
final class HookTests: XCTestCase {
    var h: Harness!
    var script = ""
    var record = ""

    override func setUpWithError() throws {
        try Harness.requireVMs()
        h = try Harness()
        _ = kata_set_child_subreaper()
        record = h.work + "/hooks.log"
        script = h.work + "/hook.sh"
        // Appends: <name> <argv1> <HOOK_ENV> <state as one line>
        try """
        #!/bin/sh
        state=$(cat)
        echo "$1 $2 $HOOK_ENV $state" >> \(record)
        [ "$2" = fail ] && { echo "hook said no" >&2; exit 3; }
        [ "$2" = slow ] && sleep 30
        exit 0
        """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
    }

    override func tearDown() { h?.assertClean() }

    func hook(_ name: String, _ mode: String = "ok", timeout: Int? = nil) -> [String: Any] {
        var d: [String: Any] = ["path": script, "args": ["hook.sh", name, mode], "env": ["HOOK_ENV=env-\(name)"]]
        if let t = timeout { d["timeout"] = t }
        return d
    }

    func bundle(_ hooks: [String: [[String: Any]]], args: [String] = ["sleep", "1000"]) throws -> String {
        try h.bundle(args: args) { $0["hooks"] = hooks }
    }

    func entries() -> [(name: String, env: String, state: [String: Any])] {
        h.read(record).split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
            guard parts.count == 4, let s = try? JSONSerialization.jsonObject(with: Data(parts[3].utf8)) as? [String: Any] else { return nil }
            return (parts[0], parts[2], s)
        }
    }

    func testEachHookRunsAtItsMomentWithTheState() throws {
        let all = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
        let b = try bundle(Dictionary(uniqueKeysWithValues: all.map { ($0, [hook($0)]) }))
        XCTAssertEqual(try h.runDetached(["create", "--bundle", b, "--pid-file", h.work + "/p", "hooked"], name: "c").status, 0)
        XCTAssertEqual(entries().map(\.name), ["prestart", "createRuntime", "createContainer"])
        let keeper = try XCTUnwrap(Int(h.read(h.work + "/p")))
        for e in entries() {
            XCTAssertEqual(e.state["status"] as? String, "creating", e.name)
            XCTAssertEqual(e.state["id"] as? String, "hooked")
            XCTAssertEqual(e.state["bundle"] as? String, b)
            XCTAssertEqual((e.state["pid"] as? NSNumber)?.intValue, keeper)
            XCTAssertEqual(e.env, "env-\(e.name)")
        }
        XCTAssertEqual(try h.run(["start", "hooked"]).status, 0)
        XCTAssertEqual(entries().map(\.name).suffix(2), ["startContainer", "poststart"])
        let after = entries()
        guard after.count == 5 else { return XCTFail("hooks ran: \(after.map(\.name))") }
        XCTAssertEqual(after[3].state["status"] as? String, "created")
        XCTAssertEqual(after[4].state["status"] as? String, "running")
        XCTAssertEqual(try h.run(["delete", "--force", "hooked"]).status, 0)
        XCTAssertEqual(entries().last?.name, "poststop")
        XCTAssertEqual(entries().last?.state["status"] as? String, "stopped")
    }

    func testFailingCreateHookFailsCreateAndLeavesNothing() throws {
        for kind in ["prestart", "createRuntime", "createContainer"] {
            let b = try h.bundle("b-\(kind)", args: ["true"]) { $0["hooks"] = [kind: [self.hook(kind, "fail")]] }
            let r = try h.run(["create", "--bundle", b, "x-\(kind)"])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains("\(kind) hook #0"), r.stderr)
            XCTAssertTrue(r.stderr.contains("exit status 3: hook said no"), r.stderr)
            XCTAssertEqual(h.stateDirectories(), [])
        }
    }

    func testHookTimeout() throws {
        let b = try bundle(["createRuntime": [hook("createRuntime", "slow", timeout: 1)]])
        let t0 = Date()
        let r = try h.run(["create", "--bundle", b, "slow"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("timed out after 1s"), r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 20)
    }

    func testFailingStartContainerHookStopsTheContainer() throws {
        let b = try bundle(["startContainer": [hook("startContainer", "fail")]])
        let pidFile = h.work + "/s.pid"
        XCTAssertEqual(try h.runDetached(["create", "--bundle", b, "--pid-file", pidFile, "sc"], name: "c").status, 0)
        let r = try h.run(["start", "sc"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("startContainer hook #0"), r.stderr)
        let pid = try XCTUnwrap(Int32(h.read(pidFile)))
        var st: Int32 = 0
        XCTAssertEqual(waitpid(pid, &st, 0), pid, "the container must be stopped")
        XCTAssertEqual(try h.run(["delete", "sc"]).status, 0)
    }

    func testFailingPoststartAndPoststopOnlyWarn() throws {
        let b = try bundle(["poststart": [hook("poststart", "fail")], "poststop": [hook("poststop", "fail")]])
        XCTAssertEqual(try h.runDetached(["run", "-d", "--bundle", b, "warn"], name: "r").status, 0)
        XCTAssertEqual(try h.stateJSON("warn")["status"] as? String, "running")
        let log = h.work + "/log.json"
        XCTAssertEqual(try h.run(["delete", "-f", "warn"], globals: ["--log", log, "--log-format", "json"]).status, 0)
        XCTAssertTrue(h.read(log).contains("\"level\":\"warning\""), h.read(log))
        XCTAssertEqual(entries().map(\.name), ["poststart", "poststop"])
    }
}
