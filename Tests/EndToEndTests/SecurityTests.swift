import CShims
import Foundation
import TestSupport
import XCTest

/// Capabilities, no_new_privs and seccomp inside the VM, compared with what runc gives the
/// same bundle on this host (the runc side is skipped, with a note, when runc is absent).
final class SecurityTests: XCTestCase {
    var h: Harness!
    var runcRoot = ""
    static let runcPath = Harness.runcPath
    static let statusLines = "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status"
    static let runcSpecCaps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

    override func setUpWithError() throws {
        try Harness.requireVMs()
        h = try Harness()
        runcRoot = h.work + "/runc-root"
        _ = kata_set_child_subreaper()
    }

    override func tearDown() {
        guard let h else { return }
        for id in ["sec", "box"] { _ = try? h.run(["delete", "--force", id]) }
        if Self.runcPath != nil { for id in ["sec", "box"] { _ = try? runc(["delete", "--force", id]) } }
        h.assertClean()
    }

    /// A busybox bundle with the applets these tests use.
    func bundle(_ name: String, args: [String], edit: (inout [String: Any]) -> Void) throws -> String {
        let b = try h.bundle(name, args: args, edit: edit)
        for tool in ["grep", "mkdir", "ip", "unshare", "rmdir"] {
            try? FileManager.default.createSymbolicLink(atPath: b + "/rootfs/bin/" + tool, withDestinationPath: "busybox")
        }
        return b
    }

    func setProcess(_ c: inout [String: Any], _ key: String, _ value: Any) {
        var p = c["process"] as! [String: Any]
        p[key] = value
        c["process"] = p
    }

    func setSeccomp(_ c: inout [String: Any], _ profile: String) {
        var linux = c["linux"] as! [String: Any]
        linux["seccomp"] = try! JSONSerialization.jsonObject(with: Data(profile.utf8))
        c["linux"] = linux
    }

    @discardableResult
    func runc(_ args: [String]) throws -> Harness.Result { try h.runc(root: runcRoot, args) }

    /// `run` of the bundle through kata-runtime and, when installed, through runc.
    func runBoth(_ b: String, file: StaticString = #filePath, line: UInt = #line) throws -> (kata: Harness.Result, runc: Harness.Result?) {
        let k = try h.runDetached(["run", "--bundle", b, "sec"], name: "run")
        guard Self.runcPath != nil else {
            print("SecurityTests: runc is not installed; kata-runtime's output is checked alone")
            return (k, nil)
        }
        let r = try runc(["run", "--bundle", b, "sec"])
        return (k, r)
    }

    func mask(_ bits: [Int]) -> String { String(format: "%016llx", bits.reduce(UInt64(0)) { $0 | 1 << UInt64($1) }) }

    func testCapabilitiesMatchRunc() throws {
        let custom: [String: Any] = ["bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN", "CAP_BOGUS"],
                                     "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN"],
                                     "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN"],
                                     "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]]
        let runcSpec: [String: Any] = ["bounding": Self.runcSpecCaps, "effective": Self.runcSpecCaps,
                                       "permitted": Self.runcSpecCaps, "ambient": Self.runcSpecCaps]
        // (capabilities, noNewPrivileges, uid, expected Cap lines in order Inh Prm Eff Bnd Amb)
        let cases: [(String, [String: Any]?, Bool, Int, [String])] = [
            ("runc-spec", runcSpec, true, 0, [mask([]), mask([5, 10, 29]), mask([5, 10, 29]), mask([5, 10, 29]), mask([])]),
            ("custom", custom, false, 0, [mask([5]), mask([0, 5, 12]), mask([0, 5, 12]), mask([0, 5, 12]), mask([5])]),
            ("none", nil, false, 0, [mask([]), mask([]), mask([]), mask([]), mask([])]),
            ("user", custom, true, 1000, [mask([5]), mask([5]), mask([5]), mask([0, 5, 12]), mask([5])]),
        ]
        for (name, caps, nnp, uid, expected) in cases {
            let b = try bundle(name, args: ["sh", "-c", Self.statusLines]) { c in
                if let caps { self.setProcess(&c, "capabilities", caps) }
                self.setProcess(&c, "noNewPrivileges", nnp)
                self.setProcess(&c, "user", ["uid": uid, "gid": uid])
            }
            let (k, r) = try runBoth(b)
            XCTAssertEqual(k.status, 0, "\(name): \(k.stderr)")
            let lines = k.stdout.split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.filter { $0.hasPrefix("Cap") }.map { String($0.split(separator: "\t").last ?? "") }, expected, name)
            XCTAssertTrue(lines.contains("NoNewPrivs:\t\(nnp ? 1 : 0)"), "\(name): \(k.stdout)")
            if name == "custom" {
                XCTAssertTrue(k.stderr.contains("ignoring unknown or unavailable capabilities: [CAP_BOGUS]"), k.stderr)
            }
            if let r {
                XCTAssertEqual(r.status, 0, "runc \(name): \(r.stderr)")
                XCTAssertEqual(k.stdout, r.stdout, "\(name): kata-runtime and runc disagree")
                if name == "custom" { XCTAssertTrue(r.stderr.contains("[CAP_BOGUS]"), r.stderr) }
            }
        }
    }

    func testExecCapAndNoNewPrivs() throws {
        let b = try bundle("box", args: ["sleep", "1000"]) { c in
            self.setProcess(&c, "capabilities", ["bounding": Self.runcSpecCaps, "effective": Self.runcSpecCaps,
                                                 "permitted": Self.runcSpecCaps, "ambient": Self.runcSpecCaps])
            self.setProcess(&c, "noNewPrivileges", false)
        }
        XCTAssertEqual(try h.runDetached(["run", "-d", "--bundle", b, "box"], name: "run").status, 0)
        let plain = try h.run(["exec", "box", "sh", "-c", Self.statusLines])
        XCTAssertTrue(plain.stdout.contains("CapEff:\t\(mask([5, 10, 29]))"), plain.stdout + plain.stderr)
        XCTAssertTrue(plain.stdout.contains("NoNewPrivs:\t0"), plain.stdout)
        // Without CAP_NET_ADMIN the container cannot touch its interfaces; with --cap it can.
        let denied = try h.run(["exec", "box", "ip", "link", "set", "lo", "mtu", "1400"])
        XCTAssertNotEqual(denied.status, 0, "ip link worked without CAP_NET_ADMIN")
        let capped = try h.run(["exec", "--cap", "CAP_NET_ADMIN", "--no-new-privs", "box", "sh", "-c",
                                Self.statusLines + "; ip link set lo mtu 1400 && echo mtu-set"])
        XCTAssertEqual(capped.status, 0, capped.stderr)
        XCTAssertTrue(capped.stdout.contains("CapEff:\t\(mask([5, 10, 12, 29]))"), capped.stdout)
        XCTAssertTrue(capped.stdout.contains("CapBnd:\t\(mask([5, 10, 12, 29]))"), capped.stdout)
        XCTAssertTrue(capped.stdout.contains("NoNewPrivs:\t1"), capped.stdout)
        XCTAssertTrue(capped.stdout.contains("mtu-set"), capped.stdout + capped.stderr)
        let bogus = try h.run(["exec", "-c", "CAP_BOGUS", "box", "true"])
        XCTAssertEqual(bogus.status, 0)
        XCTAssertTrue(bogus.stderr.contains("ignoring unknown or unavailable capabilities: [CAP_BOGUS]"), bogus.stderr)
        guard Self.runcPath != nil else { print("SecurityTests: runc is not installed; exec --cap not compared"); return }
        XCTAssertEqual(try runc(["run", "-d", "--bundle", b, "box"]).status, 0)
        let r = try runc(["exec", "--cap", "CAP_NET_ADMIN", "--no-new-privs", "box", "sh", "-c", Self.statusLines])
        XCTAssertEqual(r.stdout, capped.stdout.replacingOccurrences(of: "mtu-set\n", with: ""), "runc exec --cap differs")
    }

    func testSeccompRuleBlocksItsSyscallForInitAndExec() throws {
        let profile = """
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
          {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
          {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30},
          {"names": ["not_a_syscall"], "action": "SCMP_ACT_KILL"}]}
        """
        let b = try bundle("box", args: ["sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/d; echo mkdir=$?; rmdir /tmp; echo rmdir=$?; sleep 1000"]) { c in
            self.setSeccomp(&c, profile)
            self.setProcess(&c, "capabilities", ["bounding": Self.runcSpecCaps, "effective": Self.runcSpecCaps, "permitted": Self.runcSpecCaps])
        }
        // run -d: the init's stdout and stderr stay the files runDetached gave the runtime.
        let r = try h.runDetached(["run", "-d", "--bundle", b, "box"], name: "box")
        XCTAssertEqual(r.status, 0, r.stderr)
        var out = ""
        for _ in 0..<100 where !out.contains("rmdir=") { usleep(100_000); out = h.read(h.work + "/box.out") }
        let err = h.read(h.work + "/box.err")
        XCTAssertEqual(out, "Seccomp:\t2\nmkdir=1\nrmdir=1\n")
        XCTAssertEqual(err, "mkdir: can't create directory '/tmp/d': Operation not permitted\n" +
                            "rmdir: '/tmp': Read-only file system\n", "rmdir gets errnoRet 30 (EROFS)")
        // An exec'd process runs under the container's filter too.
        let e = try h.run(["exec", "box", "sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/e"])
        XCTAssertEqual(e.stdout, "Seccomp:\t2\n")
        XCTAssertEqual(e.stderr, "mkdir: can't create directory '/tmp/e': Operation not permitted\n")
        XCTAssertEqual(e.status, 1)
    }

    func testFeaturesReportWhatRuncReports() throws {
        let k = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try h.run(["features"]).stdout.utf8)) as? [String: Any])
        let linux = try XCTUnwrap(k["linux"] as? [String: Any])
        let seccomp = try XCTUnwrap(linux["seccomp"] as? [String: Any])
        XCTAssertEqual(seccomp["enabled"] as? Bool, true)
        XCTAssertEqual((k["annotations"] as? [String: String])?["io.github.seccomp.libseccomp.version"]?.isEmpty, false)
        guard Self.runcPath != nil else { print("SecurityTests: runc is not installed; features not compared"); return }
        let r = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try runc(["features"]).stdout.utf8)) as? [String: Any])
        let rl = try XCTUnwrap(r["linux"] as? [String: Any])
        let rs = try XCTUnwrap(rl["seccomp"] as? [String: Any])
        XCTAssertTrue(Set(rs.keys).isSubset(of: Set(seccomp.keys)), "runc's seccomp keys \(rs.keys) vs \(seccomp.keys)")
        XCTAssertEqual(seccomp["operators"] as? [String], rs["operators"] as? [String])
        // Every action runc lists but NOTIFY, whose listener would be inside the VM.
        XCTAssertEqual(seccomp["actions"] as? [String], (rs["actions"] as? [String])?.filter { $0 != "SCMP_ACT_NOTIFY" })
        XCTAssertTrue(Set(rs["archs"] as? [String] ?? []).isSubset(of: Set(seccomp["archs"] as? [String] ?? [])))
        XCTAssertEqual(linux["capabilities"] as? [String], rl["capabilities"] as? [String])
        XCTAssertEqual((k["annotations"] as? [String: String])?["io.github.seccomp.libseccomp.version"],
                       (r["annotations"] as? [String: String])?["io.github.seccomp.libseccomp.version"])
    }

    func testBadSeccompProfileFailsCreateClearly() throws {
        let b = try bundle("sec", args: ["true"]) { c in
            self.setSeccomp(&c, #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_EXPLODE"}]}"#)
        }
        let r = try h.runDetached(["create", "--bundle", b, "sec"], name: "create")
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "kata-runtime: \(b)/config.json: linux.seccomp.syscalls[0].action: unknown action \"SCMP_ACT_EXPLODE\"\n")
        XCTAssertEqual(h.stateDirectories(), [])
    }

    func testDockerDefaultProfileLoadsAndAShellWorks() throws {
        let dockerCaps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
                          "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
        let script = "echo hello; ls / | wc -l; mkdir /tmp/made && rmdir /tmp/made && echo made; id -u; unshare -n true; echo unshare=$?; " + Self.statusLines
        let b = try bundle("sec", args: ["sh", "-c", script]) { c in
            self.setSeccomp(&c, dockerLikeProfile())
            self.setProcess(&c, "capabilities", ["bounding": dockerCaps, "effective": dockerCaps, "permitted": dockerCaps])
            self.setProcess(&c, "noNewPrivileges", false)  // docker's default: the filter goes in while privileged
        }
        let (k, r) = try runBoth(b)
        XCTAssertEqual(k.status, 0, k.stderr)
        XCTAssertTrue(k.stdout.hasPrefix("hello\n"), k.stdout + k.stderr)
        XCTAssertTrue(k.stdout.contains("made\n0\n"), k.stdout + k.stderr)
        XCTAssertTrue(k.stdout.contains("unshare=1"), "unshare is refused by the profile: \(k.stdout)")
        XCTAssertTrue(k.stdout.contains("Seccomp:\t2"), k.stdout)
        if let r {
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(k.stdout, r.stdout, "kata-runtime and runc disagree under the same profile")
            XCTAssertEqual(k.stderr, r.stderr, "the refused unshare fails the same way")
        }
    }
}
