import Foundation
import XCTest

/// Commands compared with runc on the same input.
final class CommandTests: XCTestCase {
    func jsonFile(_ path: String) throws -> NSDictionary {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! NSDictionary
    }

    func testSpecMatchesRunc() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/runc") || FileManager.default.isExecutableFile(atPath: "/usr/bin/runc") else {
            throw XCTSkip("runc is not installed: nothing to compare with")
        }
        guard FileManager.default.isExecutableFile(atPath: Harness.binary) else { throw XCTSkip("\(Harness.binary) is not installed") }
        let h = try Harness()
        defer { try? FileManager.default.removeItem(atPath: h.work) }
        for rootless in [false, true] {
            let ours = h.work + "/ours-\(rootless)", theirs = h.work + "/runc-\(rootless)"
            for d in [ours, theirs] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
            let extra = rootless ? ["--rootless"] : []
            XCTAssertEqual(try h.run(["spec", "--bundle", ours] + extra).status, 0)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["runc", "spec", "--bundle", theirs] + extra
            try p.run(); p.waitUntilExit()
            XCTAssertEqual(try jsonFile(ours + "/config.json"), try jsonFile(theirs + "/config.json"), "rootless=\(rootless)")
            let again = try h.run(["spec", "--bundle", ours])
            XCTAssertNotEqual(again.status, 0, "spec must not overwrite config.json")
            XCTAssertTrue(again.stderr.contains("exists"), again.stderr)
        }
    }

    func testListShowsContainersAsRuncDoes() throws {
        try Harness.requireVMs()
        let h = try Harness()
        defer { h.assertClean() }
        XCTAssertEqual(try h.run(["list", "-q"]).stdout, "")
        let b = try h.bundle(args: ["sleep", "1000"])
        XCTAssertEqual(try h.runDetached(["create", "--bundle", b, "listed"], name: "c").status, 0)
        let table = try h.run(["list"]).stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(table.first?.split(separator: " ", omittingEmptySubsequences: true),
                       ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"])
        XCTAssertEqual(table.count, 2)
        guard table.count == 2 else { return }
        XCTAssertTrue(table[1].hasPrefix("listed "), table[1])
        XCTAssertTrue(table[1].contains(" created "), table[1])
        XCTAssertTrue(table[1].hasSuffix(" root"), table[1])
        let json = try JSONSerialization.jsonObject(with: Data(try h.run(["list", "--format", "json"]).stdout.utf8)) as! [[String: Any]]
        XCTAssertEqual(json.count, 1)
        guard json.count == 1 else { return }
        XCTAssertEqual(json[0]["id"] as? String, "listed")
        XCTAssertEqual(json[0]["status"] as? String, "created")
        XCTAssertEqual(json[0]["bundle"] as? String, b)
        XCTAssertEqual(Set(json[0].keys), ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"])
        XCTAssertEqual(try h.run(["list", "-q"]).stdout, "listed\n")
        XCTAssertNotEqual(try h.run(["list", "--format", "yaml"]).status, 0)
        XCTAssertEqual(try h.run(["delete", "listed"]).status, 0)
    }

    func testCheckReportsBackendAndProbe() throws {
        guard FileManager.default.isExecutableFile(atPath: Harness.binary) else { throw XCTSkip("\(Harness.binary) is not installed") }
        let h = try Harness()
        defer { try? FileManager.default.removeItem(atPath: h.work) }
        let r = try h.run(["check", "--json"])
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        let checks = try XCTUnwrap(obj["checks"] as? [[String: Any]])
        let names = checks.compactMap { $0["name"] as? String }
        for n in ["configuration", "/dev/kvm", "PVM", "qemu", "virtiofsd", "guest kernel", "guest initramfs"] {
            XCTAssertTrue(names.contains(n), "check should report \(n): \(names)")
        }
        let canCreate = try XCTUnwrap(obj["canCreateContainers"] as? Bool)
        XCTAssertEqual(r.status, canCreate ? 0 : 1)
        if FileManager.default.fileExists(atPath: "/dev/kvm") && getuid() == 0 {
            let probe = try XCTUnwrap(obj["probe"] as? [String: Any], "a real probe runs when /dev/kvm exists")
            XCTAssertEqual(probe["ran"] as? Bool, true, "\(probe)")
        }
        // A configuration naming a missing kernel: not capable, and the line says which file.
        let cfg = h.work + "/bad.toml"
        try "[hypervisor]\nkernel = \"/nonexistent/vmlinux\"\n".write(toFile: cfg, atomically: true, encoding: .utf8)
        let bad = try h.run(["check"], environment: ["KATA_CONFIG": cfg])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stdout.contains("FAIL guest kernel: /nonexistent/vmlinux"), bad.stdout)
    }
}
