import Foundation
import XCTest

/// Every bad input gets a one-line error naming the problem, a non-zero exit, and leaves
/// nothing behind (checked in tearDown: no process, mount or state directory).
final class BadInputTests: XCTestCase {
    var h: Harness!

    override func setUpWithError() throws {
        try Harness.requireVMs()
        h = try Harness()
    }

    override func tearDown() { h?.assertClean() }

    func assertFails(_ args: [String], mentions text: String, cwd: String? = nil,
                     file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try h.run(args, cwd: cwd)
        XCTAssertNotEqual(r.status, 0, "\(args) should fail", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(text), "stderr of \(args) should mention \"\(text)\": \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "one line: \(r.stderr)", file: file, line: line)
    }

    func writeConfig(_ bundle: String, _ text: String) throws {
        try text.write(toFile: bundle + "/config.json", atomically: true, encoding: .utf8)
    }

    func testMissingBundle() throws {
        try assertFails(["create", "--bundle", h.work + "/nope", "x"], mentions: "No such file or directory")
    }

    func testMissingConfig() throws {
        let b = try h.bundle(args: ["true"])
        try FileManager.default.removeItem(atPath: b + "/config.json")
        try assertFails(["create", "--bundle", b, "x"], mentions: "config.json not found")
    }

    func testInvalidJSONNamesLineAndColumn() throws {
        let b = try h.bundle(args: ["true"])
        try writeConfig(b, "{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {\"args\": [\"true\",]}\n}\n")
        try assertFails(["create", "--bundle", b, "x"], mentions: "line 3")
        try assertFails(["run", "--bundle", b, "x"], mentions: "invalid JSON")
    }

    func testWrongTypeNamesThePath() throws {
        let b = try h.bundle(args: ["true"])
        try writeConfig(b, #"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh",5]}}"#)
        try assertFails(["create", "--bundle", b, "x"], mentions: "process.args[1]")
    }

    func testMissingRootfs() throws {
        let b = try h.bundle(args: ["true"])
        try FileManager.default.removeItem(atPath: b + "/rootfs")
        try assertFails(["create", "--bundle", b, "x"], mentions: "rootfs")
    }

    func testUnsupportedOCIVersion() throws {
        let b = try h.bundle(args: ["true"]) { $0["ociVersion"] = "2.0.0" }
        try assertFails(["create", "--bundle", b, "x"], mentions: "unsupported ociVersion")
    }

    func testEmptyArgs() throws {
        let b = try h.bundle(args: [])
        try assertFails(["run", "--bundle", b, "x"], mentions: "args must not be empty")
    }

    func testMissingExecutable() throws {
        let b = try h.bundle(args: ["no-such-program"])
        try assertFails(["run", "--bundle", b, "x"], mentions: "executable file not found")
    }

    func testBadIDs() throws {
        let b = try h.bundle(args: ["true"])
        for id in ["a/b", "..", "../escape", "with space", ""] {
            try assertFails(["create", "--bundle", b, id], mentions: "container id")
        }
        try assertFails(["state", "../x"], mentions: "invalid container id")
    }

    func testUnknownID() throws {
        for cmd in [["state"], ["start"], ["kill"], ["delete"]] {
            try assertFails(cmd + ["ghost"], mentions: "does not exist")
        }
    }

    func testWrongFlagsAndCommands() throws {
        try assertFails(["create", "--bogus", "x"], mentions: "flag provided but not defined: -bogus")
        try assertFails(["frobnicate"], mentions: "unknown command")
        try assertFails(["state"], mentions: "requires exactly 1")
        try assertFails(["--log-format", "xml", "state", "x"], mentions: "log-format")
    }

    func testDuplicateIDKeepsTheFirstContainer() throws {
        let b = try h.bundle(args: ["sleep", "1000"])
        XCTAssertEqual(try h.runDetached(["create", "--bundle", b, "dup"], name: "c1").status, 0)
        try assertFails(["create", "--bundle", b, "dup"], mentions: "container with id exists: dup")
        XCTAssertEqual(try h.stateJSON("dup")["status"] as? String, "created")
        XCTAssertEqual(try h.run(["delete", "dup"]).status, 0)
    }

    func testBuiltinBackendOnAPVMHostFailsFastWithTheReason() throws {
        guard FileManager.default.fileExists(atPath: "/sys/module/kvm_pvm") else {
            throw XCTSkip("this host's /dev/kvm is not PVM: the built-in VMM would really try to boot here")
        }
        let b = try h.bundle(args: ["true"])
        let t0 = Date()
        let r = try h.run(["run", "--bundle", b, "vmm"], environment: ["KATA_HYPERVISOR": "builtin"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("hypervisor builtin") && r.stderr.contains("PVM"), r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10, "must not wait for a boot timeout")
        let bad = try h.run(["run", "--bundle", b, "vmm2"], environment: ["KATA_HYPERVISOR": "vmware"])
        XCTAssertTrue(bad.stderr.contains("must be auto, qemu or builtin"), bad.stderr)
    }
}

