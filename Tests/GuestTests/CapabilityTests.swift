import XCTest
import TestSupport
#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import OCI
import SyscallFilter
@testable import Guest

/// Runs `busybox sh -c script` through the launcher's last steps (user, capabilities,
/// no_new_privs, seccomp, execve) in a forked child; returns its output and wait status.
func launch(_ process: OCI.Process, seccomp: SeccompProgram? = nil) -> (output: String, status: Int32) {
    runInChild { fd in
        dup2(fd, 1); dup2(fd, 2)
        let err = ProcessLauncher(process: process, seccomp: seccomp).exec("/bin/busybox")
        emit(2, "launch failed: \(err)")
        return 126
    }
}

func busyboxProcess(_ script: String) -> OCI.Process {
    OCI.Process(args: ["busybox", "sh", "-c", script], env: ["PATH=/bin:/usr/bin"])
}

func requireRootAndBusybox() throws {
    guard getuid() == 0 else { throw XCTSkip("capabilities and seccomp need root (running as uid \(getuid()))") }
    guard Posix.exists("/bin/busybox") else { throw XCTSkip("/bin/busybox missing (apt-get install busybox-static)") }
}

/// The Cap* lines of /proc/self/status, as a process shows them after execve.
final class CapabilityTests: XCTestCase {
    func mask(_ names: [String]) -> String {
        var m: UInt64 = 0
        for n in names { m |= 1 << UInt64(CapabilityNames.value(n)!) }
        return String(format: "%016llx", m)
    }

    func status(_ caps: OCI.Process.Capabilities?, uid: UInt32 = 0, noNewPrivileges: Bool = false) throws -> [String: String] {
        var p = busyboxProcess("grep -E '^(Cap|NoNewPrivs)' /proc/self/status")
        p.capabilities = caps
        p.uid = uid; p.gid = uid
        p.noNewPrivileges = noNewPrivileges
        let (out, st) = launch(p)
        XCTAssertEqual(describeWaitStatus(st), "exit 0", out)
        var d: [String: String] = [:]
        for line in out.split(separator: "\n") {
            let f = line.split(separator: ":", maxSplits: 1)
            if f.count == 2 { d[String(f[0])] = f[1].trimmingCharacters(in: .whitespaces) }
        }
        return d
    }

    func caps(bounding: [String] = [], effective: [String] = [], inheritable: [String] = [],
              permitted: [String] = [], ambient: [String] = []) -> OCI.Process.Capabilities {
        var c = OCI.Process.Capabilities()
        c.bounding = bounding; c.effective = effective; c.inheritable = inheritable
        c.permitted = permitted; c.ambient = ambient
        return c
    }

    func testNamesAreRuncsAndLibcaps() {
        XCTAssertEqual(CapabilityNames.known.first, "CAP_CHOWN")
        XCTAssertEqual(CapabilityNames.value("CAP_NET_ADMIN"), 12)
        XCTAssertTrue(CapabilityNames.known.contains("CAP_CHECKPOINT_RESTORE"))
        XCTAssertNil(CapabilityNames.value("cap_kill"), "runc only knows the upper-case CAP_ names")
        XCTAssertEqual(CapabilityNames.unknown(in: caps(bounding: ["CAP_KILL", "CAP_BOGUS"], ambient: ["CAP_BOGUS", "cap_kill"])),
                       ["CAP_BOGUS", "cap_kill"])
    }

    func testRootGetsExactlyTheConfiguredSets() throws {
        try requireRootAndBusybox()
        let set = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN"]
        let s = try status(caps(bounding: set, effective: set, inheritable: ["CAP_KILL"], permitted: set, ambient: ["CAP_KILL"]))
        XCTAssertEqual(s["CapBnd"], mask(set))
        XCTAssertEqual(s["CapEff"], mask(set))
        XCTAssertEqual(s["CapPrm"], mask(set))
        XCTAssertEqual(s["CapInh"], mask(["CAP_KILL"]))
        XCTAssertEqual(s["CapAmb"], mask(["CAP_KILL"]))
        XCTAssertEqual(s["NoNewPrivs"], "0")
    }

    func testAmbientCarriesCapabilitiesToANonRootUser() throws {
        try requireRootAndBusybox()
        let s = try status(caps(bounding: ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN"],
                                effective: ["CAP_KILL", "CAP_NET_BIND_SERVICE"], inheritable: ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
                                permitted: ["CAP_KILL", "CAP_NET_BIND_SERVICE"], ambient: ["CAP_NET_BIND_SERVICE"]),
                           uid: 1000, noNewPrivileges: true)
        // After execve a non-root process keeps only its ambient capabilities in effect.
        XCTAssertEqual(s["CapBnd"], mask(["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN"]))
        XCTAssertEqual(s["CapInh"], mask(["CAP_KILL", "CAP_NET_BIND_SERVICE"]))
        XCTAssertEqual(s["CapPrm"], mask(["CAP_NET_BIND_SERVICE"]))
        XCTAssertEqual(s["CapEff"], mask(["CAP_NET_BIND_SERVICE"]))
        XCTAssertEqual(s["CapAmb"], mask(["CAP_NET_BIND_SERVICE"]))
        XCTAssertEqual(s["NoNewPrivs"], "1")
    }

    func testRuncSpecDefaultsLoseAmbientWithoutInheritable() throws {
        try requireRootAndBusybox()
        // `runc spec` lists ambient capabilities but no inheritable ones: runc 1.1 ignores the
        // failed ambient raises, and so does the guest.
        let set = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        let s = try status(caps(bounding: set, effective: set, permitted: set, ambient: set), noNewPrivileges: true)
        XCTAssertEqual(s["CapBnd"], mask(set))
        XCTAssertEqual(s["CapEff"], mask(set))
        XCTAssertEqual(s["CapAmb"], mask([]))
        XCTAssertEqual(s["CapInh"], mask([]))
    }

    func testNoCapabilitiesObjectMeansNone() throws {
        try requireRootAndBusybox()
        let s = try status(nil)
        for k in ["CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"] { XCTAssertEqual(s[k], mask([]), k) }
    }

    func testUnknownNamesAreLeftOut() throws {
        try requireRootAndBusybox()
        let s = try status(caps(bounding: ["CAP_KILL", "CAP_BOGUS"], effective: ["CAP_KILL", "CAP_BOGUS"],
                                permitted: ["CAP_KILL", "CAP_BOGUS"]))
        XCTAssertEqual(s["CapBnd"], mask(["CAP_KILL"]))
        XCTAssertEqual(s["CapEff"], mask(["CAP_KILL"]))
    }

    func testImpossibleSetsFailWithAReadableError() throws {
        try requireRootAndBusybox()
        // Effective beyond permitted: capset refuses, as it does for runc.
        var p = busyboxProcess("true")
        p.capabilities = caps(bounding: ["CAP_KILL"], effective: ["CAP_KILL", "CAP_CHOWN"], permitted: ["CAP_KILL"])
        let (out, st) = launch(p)
        XCTAssertEqual(describeWaitStatus(st), "exit 126")
        XCTAssertEqual(out, "launch failed: apply capabilities: Operation not permitted")
    }
}
