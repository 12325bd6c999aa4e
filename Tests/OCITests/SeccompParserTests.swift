import XCTest
@testable import OCI

/// linux.seccomp and process.capabilities as config.json carries them: what is accepted,
/// what runc's rules turn off, and the one-line errors for what is wrong.
final class SeccompParserTests: XCTestCase {
    func spec(seccomp: String) throws(SpecError) -> Spec {
        try SpecParser.parse(Array(#"{"ociVersion": "1.0.2", "process": {"args": ["sh"]}, "linux": {"seccomp": \#(seccomp)}}"#.utf8))
    }

    func error(seccomp: String) -> String {
        do { _ = try spec(seccomp: seccomp); return "accepted" } catch { return error.message }
    }

    func testDockerShapedProfileParses() throws {
        let s = try XCTUnwrap(try spec(seccomp: """
        {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
         "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
         "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
         "syscalls": [
           {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
           {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
           {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
           {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
         ]}
        """).linux.seccomp)
        XCTAssertEqual(s.defaultAction, .errno)
        XCTAssertEqual(s.defaultErrnoRet, 1)
        XCTAssertEqual(s.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        XCTAssertEqual(s.flags, ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
        XCTAssertEqual(s.syscalls.count, 4)
        XCTAssertEqual(s.syscalls[0].names, ["read", "write"])
        XCTAssertEqual(s.syscalls[1].args, [Seccomp.Arg(index: 0, value: 4_294_967_295, valueTwo: 0, op: .eq)])
        XCTAssertEqual(s.syscalls[2].args[0].op, .maskedEq)
        XCTAssertEqual(s.syscalls[3].errnoRet, 38)
    }

    func testEmptyProfileMeansNoFilter() throws {
        XCTAssertNil(try spec(seccomp: "{}").linux.seccomp)
        XCTAssertNil(try spec(seccomp: #"{"architectures": ["SCMP_ARCH_X86_64"]}"#).linux.seccomp)
        XCTAssertNotNil(try spec(seccomp: #"{"defaultAction": "SCMP_ACT_ALLOW"}"#).linux.seccomp)
    }

    func testBadProfilesNameWhatIsWrong() {
        XCTAssertEqual(error(seccomp: #"{"defaultAction": "SCMP_ACT_BOGUS"}"#),
                       #"config.json: linux.seccomp.defaultAction: unknown action "SCMP_ACT_BOGUS""#)
        XCTAssertEqual(error(seccomp: #"{"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#),
                       "config.json: linux.seccomp.defaultAction is required when syscalls are listed")
        XCTAssertEqual(error(seccomp: #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "ALLOW"}]}"#),
                       #"config.json: linux.seccomp.syscalls[0].action: unknown action "ALLOW""#)
        XCTAssertEqual(error(seccomp: #"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}"#),
                       #"config.json: linux.seccomp.architectures[0]: unknown architecture "SCMP_ARCH_Z80""#)
        XCTAssertEqual(error(seccomp: #"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}"#),
                       #"config.json: linux.seccomp.flags[0]: unknown seccomp flag "SECCOMP_FILTER_FLAG_BOGUS""#)
        let arg = #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [ARG]}]}"#
        XCTAssertEqual(error(seccomp: arg.replacingOccurrences(of: "ARG", with: #"{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}"#)),
                       "config.json: linux.seccomp.syscalls[0].args[0].index: 6 is out of range (a syscall has 6 arguments)")
        XCTAssertEqual(error(seccomp: arg.replacingOccurrences(of: "ARG", with: #"{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}"#)),
                       #"config.json: linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_ABOUT""#)
        XCTAssertEqual(error(seccomp: arg.replacingOccurrences(of: "ARG", with: #"{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}"#)),
                       "config.json: linux.seccomp.syscalls[0].args[0].value: expected unsigned integer, got number")
        XCTAssertEqual(error(seccomp: #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [""], "action": "SCMP_ACT_ERRNO"}]}"#),
                       "config.json: linux.seccomp.syscalls[0].names[0]: empty string is not a valid syscall")
        XCTAssertTrue(error(seccomp: #"{"defaultAction": "SCMP_ACT_NOTIFY"}"#).contains("SCMP_ACT_NOTIFY is not supported"))
        XCTAssertEqual(error(seccomp: #""strict""#), "config.json: linux.seccomp: expected object, got string")
    }

    func testCapabilitiesParseAsGiven() throws {
        let p = try SpecParser.parseProcess(Array(#"""
        {"args": ["sh"], "capabilities": {"bounding": ["CAP_KILL", "CAP_BOGUS"], "inheritable": ["CAP_KILL"]}}
        """#.utf8))
        XCTAssertEqual(p.capabilities?.bounding, ["CAP_KILL", "CAP_BOGUS"])  // unknown names are the guest's to skip
        XCTAssertEqual(p.capabilities?.inheritable, ["CAP_KILL"])
        XCTAssertEqual(p.capabilities?.effective, [])
        XCTAssertNil(try SpecParser.parseProcess(Array(#"{"args": ["sh"]}"#.utf8)).capabilities)
        XCTAssertThrowsError(try SpecParser.parseProcess(Array(#"{"args": ["sh"], "capabilities": {"effective": "CAP_KILL"}}"#.utf8))) {
            XCTAssertEqual(($0 as? SpecError)?.message, "process.json: capabilities.effective: expected array, got string")
        }
    }
}
