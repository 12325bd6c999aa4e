import CShims
import Foundation
import XCTest

/// The same bundle and the same calls through runc and kata-runtime: exit codes and JSON
/// shapes must match, because engines written for runc check them.
final class RuncComparisonTests: XCTestCase {
    var h: Harness!
    var runcRoot = ""
    static let runc = Harness.runcPath

    override func setUpWithError() throws {
        try Harness.requireVMs()
        guard Self.runc != nil else { throw XCTSkip("runc is not installed: nothing to compare with") }
        h = try Harness()
        runcRoot = h.work + "/runc-root"
        _ = kata_set_child_subreaper()
    }

    override func tearDown() {
        guard let h else { return }
        for id in ["r1", "r2", "r3"] { _ = try? runc(["delete", "--force", id]) }
        h.assertClean()
    }

    @discardableResult
    func runc(_ args: [String]) throws -> Harness.Result { try h.runc(root: runcRoot, args) }

    func both(_ args: [String], ids: (String, String)) throws -> (runc: Harness.Result, kata: Harness.Result) {
        let r = try runc(args.map { $0 == "ID" ? ids.0 : $0 })
        let k = try h.runDetached(args.map { $0 == "ID" ? ids.1 : $0 }, name: "k")
        return (r, k)
    }

    func keys(_ json: String) -> Set<String> {
        Set(((try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any])?.keys.map { $0 } ?? [])
    }

    func testLifecycleExitCodesAndShapesMatchRunc() throws {
        let b = try h.bundle(args: ["sleep", "1000"])
        // create
        var (r, k) = try both(["create", "--bundle", b, "ID"], ids: ("r1", "k1"))
        XCTAssertEqual(r.status, 0, r.stderr); XCTAssertEqual(k.status, 0, k.stderr)
        // state shape
        let rs = try runc(["state", "r1"]), ks = try h.run(["state", "k1"])
        XCTAssertEqual(keys(rs.stdout).subtracting(["annotations"]), keys(ks.stdout).subtracting(["annotations"]),
                       "state keys: runc \(rs.stdout) kata \(ks.stdout)")
        XCTAssertTrue(rs.stdout.contains("\"status\": \"created\"") && ks.stdout.contains("\"status\": \"created\""))
        // duplicate id
        (r, k) = try both(["create", "--bundle", b, "ID"], ids: ("r1", "k1"))
        XCTAssertEqual(k.status, r.status); XCTAssertNotEqual(k.status, 0)
        // start, start again
        (r, k) = try both(["start", "ID"], ids: ("r1", "k1"))
        XCTAssertEqual([r.status, k.status], [0, 0], r.stderr + k.stderr)
        (r, k) = try both(["start", "ID"], ids: ("r1", "k1"))
        XCTAssertEqual(k.status, r.status, "start twice: runc \(r.stderr) kata \(k.stderr)")
        // ps --format json: an array of numbers
        let rp = try runc(["ps", "--format", "json", "r1"]), kp = try h.run(["ps", "--format", "json", "k1"])
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(rp.stdout.utf8)) as? [Int], rp.stdout)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(kp.stdout.utf8)) as? [Int], kp.stdout)
        // delete running without force
        (r, k) = try both(["delete", "ID"], ids: ("r1", "k1"))
        XCTAssertEqual(k.status, r.status); XCTAssertNotEqual(k.status, 0)
        // list json shape
        let rl = try runc(["list", "--format", "json"]), kl = try h.run(["list", "--format", "json"])
        let rItem = ((try JSONSerialization.jsonObject(with: Data(rl.stdout.utf8)) as? [[String: Any]])?.first?.keys).map(Set.init) ?? []
        let kItem = ((try JSONSerialization.jsonObject(with: Data(kl.stdout.utf8)) as? [[String: Any]])?.first?.keys).map(Set.init) ?? []
        XCTAssertEqual(rItem, kItem, "list keys")
        // kill, then the stopped container's errors
        (r, k) = try both(["kill", "ID", "KILL"], ids: ("r1", "k1"))
        XCTAssertEqual([r.status, k.status], [0, 0])
        for _ in 0..<100 where (try? h.stateJSON("k1")["status"] as? String) != "stopped" { usleep(50_000) }
        usleep(200_000)
        for cmd in [["kill", "ID"], ["exec", "ID", "true"], ["pause", "ID"], ["start", "ID"]] {
            (r, k) = try both(cmd, ids: ("r1", "k1"))
            XCTAssertEqual(k.status, r.status, "\(cmd) on a stopped container: runc \(r.status) \(r.stderr) kata \(k.status) \(k.stderr)")
        }
        (r, k) = try both(["delete", "ID"], ids: ("r1", "k1"))
        XCTAssertEqual([r.status, k.status], [0, 0])
    }

    func testUnknownContainerExitCodesMatchRunc() throws {
        for cmd in [["state", "ID"], ["start", "ID"], ["kill", "ID"], ["delete", "ID"], ["exec", "ID", "true"],
                    ["pause", "ID"], ["resume", "ID"], ["ps", "ID"], ["events", "--stats", "ID"]] {
            let (r, k) = try both(cmd, ids: ("ghost", "ghost"))
            XCTAssertEqual(k.status, r.status, "\(cmd): runc \(r.stderr) kata \(k.stderr)")
        }
        let (r, k) = try both(["delete", "--force", "ID"], ids: ("ghost", "ghost"))
        XCTAssertEqual(k.status, r.status, "delete --force of a missing container")
    }

    func testRunExitStatusMatchesRunc() throws {
        for (args, name) in [(["sh", "-c", "exit 3"], "three"), (["true"], "zero")] {
            let b = try h.bundle(name, args: args)
            let (r, k) = try both(["run", "--bundle", b, "ID"], ids: ("r2", "k2"))
            XCTAssertEqual(k.status, r.status, "\(args)")
        }
    }
}
