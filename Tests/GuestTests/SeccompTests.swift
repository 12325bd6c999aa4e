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

/// linux.seccomp compiled by the guest code and loaded into a forked child on this host:
/// the calls a profile names fail the way it says, the others still work.
final class SeccompTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir("kata-seccomp") }
    override func tearDown() { Posix.removeAll(dir) }

    func profile(_ json: String) throws -> Seccomp {
        let doc = #"{"ociVersion": "1.0.2", "process": {"args": ["sh"]}, "linux": {"seccomp": \#(json)}}"#
        return try XCTUnwrap(try SpecParser.parse(Array(doc.utf8)).linux.seccomp)
    }

    func requireSeccomp() throws {
        guard getuid() == 0 else { throw XCTSkip("loading a filter without no_new_privs needs root (uid \(getuid()))") }
    }

    /// Loads `program` in a child, then runs `calls` there and reports each result as
    /// "ok" or "errno N" on one line (the child allocates nothing after loading).
    func results(_ program: SeccompProgram, _ calls: [() -> Int]) -> (lines: [String], status: Int32) {
        let (out, st) = runInChild { fd in
            do { try program.load() } catch { emit(fd, "load failed: \(error)\n"); return 1 }
            var codes = [Int32](repeating: 0, count: calls.count)
            for (i, c) in calls.enumerated() { codes[i] = c() < 0 ? errno : 0 }
            _ = codes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            return 0
        }
        if out.hasPrefix("load failed") { return ([out], st) }
        let bytes = Array(out.utf8)
        let codes = stride(from: 0, to: bytes.count - bytes.count % 4, by: 4).map {
            Int32(bitPattern: UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24)
        }
        return (codes.map { $0 == 0 ? "ok" : "errno \($0)" }, st)
    }

    func mkdirCall(_ name: String) -> () -> Int { { [dir] in Int(mkdir(dir + "/" + name, 0o755)) } }
    func socketCall(_ family: Int32) -> () -> Int {
        { let s = socket(family, Int32(SOCK_STREAM.rawValue), 0); if s >= 0 { close(s) }; return Int(s) }
    }
    func openCall(_ path: String, _ flags: Int32) -> () -> Int {
        { let fd = kata_open_mode(path, flags | O_CLOEXEC, 0o600); if fd >= 0 { close(fd) }; return Int(fd) }
    }

    func testErrnoRuleBlocksOnlyItsSyscall() throws {
        try requireSeccomp()
        let p = try SeccompFilter.compile(try profile("""
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
        """))
        let (r, st) = results(p, [mkdirCall("a"), { Int(getpid()) }, openCall(dir + "/f", O_CREAT | O_WRONLY)])
        XCTAssertEqual(describeWaitStatus(st), "exit 0")
        XCTAssertEqual(r, ["errno \(EPERM)", "ok", "ok"])
        XCTAssertFalse(Posix.exists(dir + "/a"))
        XCTAssertTrue(Posix.exists(dir + "/f"))
    }

    func testErrnoRetAndDefaultErrnoRet() throws {
        try requireSeccomp()
        let p = try SeccompFilter.compile(try profile("""
        {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": \(EXDEV),
         "syscalls": [
           {"names": ["write", "exit_group", "exit", "brk", "mmap", "munmap", "madvise", "futex", "rt_sigprocmask", "getpid", "close"],
            "action": "SCMP_ACT_ALLOW"},
           {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": \(EDQUOT)}]}
        """))
        // getppid is not listed and numbered below the profile's largest (exit_group):
        // the default errno, not ENOSYS.
        let (r, _) = results(p, [mkdirCall("a"), { Int(getpid()) }, { Int(kata_syscall3(110 /* getppid */, 0, 0, 0)) }])
        XCTAssertEqual(r, ["errno \(EDQUOT)", "ok", "errno \(EXDEV)"])
    }

    func testArgumentFilters() throws {
        try requireSeccomp()
        // Two conditions on one argument: runc adds one rule per condition, so either blocks.
        // MASKED_EQ: value is the mask, valueTwo what the masked argument must equal.
        let p = try SeccompFilter.compile(try profile("""
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
          {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": \(EAFNOSUPPORT),
           "args": [{"index": 0, "value": \(AF_INET), "op": "SCMP_CMP_EQ"}, {"index": 0, "value": \(AF_INET6), "op": "SCMP_CMP_EQ"}]},
          {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "errnoRet": \(EACCES),
           "args": [{"index": 2, "value": \(O_CREAT), "valueTwo": \(O_CREAT), "op": "SCMP_CMP_MASKED_EQ"}]}]}
        """))
        let existing = dir + "/existing"
        writeFile(existing, "x")
        let (r, st) = results(p, [socketCall(AF_INET), socketCall(AF_INET6), socketCall(AF_UNIX),
                                  openCall(dir + "/new", O_CREAT | O_WRONLY), openCall(existing, O_RDONLY)])
        XCTAssertEqual(describeWaitStatus(st), "exit 0")
        XCTAssertEqual(r, ["errno \(EAFNOSUPPORT)", "errno \(EAFNOSUPPORT)", "ok", "errno \(EACCES)", "ok"])
    }

    func testUnknownSyscallNamesAreSkipped() throws {
        try requireSeccomp()
        let p = try SeccompFilter.compile(try profile("""
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
          {"names": ["no_such_syscall_here", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
        """))
        XCTAssertEqual(p.skipped, ["no_such_syscall_here"])
        let (r, _) = results(p, [mkdirCall("a")])
        XCTAssertEqual(r, ["errno \(EPERM)"])
    }

    func testNewerSyscallsGetENOSYS() throws {
        try requireSeccomp()
        // The stub is runc's: above the largest syscall the profile names, ENOSYS; below it,
        // the default action. With x86 and x32 too (docker's architectures) the same holds.
        for arches in [#"["SCMP_ARCH_X86_64"]"#, #"["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]"#] {
            let p = try SeccompFilter.compile(try profile("""
            {"defaultAction": "SCMP_ACT_ERRNO", "architectures": \(arches), "syscalls": [
              {"names": ["write", "exit_group", "exit", "brk", "mmap", "munmap", "madvise", "futex", "rt_sigprocmask", "close"],
               "action": "SCMP_ACT_ALLOW"}]}
            """))
            let (r, st) = results(p, [{ Int(kata_syscall3(39 /* getpid */, 0, 0, 0)) },
                                      { Int(kata_syscall3(302 /* prlimit64 */, 0, 0, 0)) },
                                      { Int(kata_syscall3(1000, 0, 0, 0)) }])
            XCTAssertEqual(describeWaitStatus(st), "exit 0", arches)
            XCTAssertEqual(r, ["errno \(EPERM)", "errno \(ENOSYS)", "errno \(ENOSYS)"], arches)
        }
        // Without architectures runc adds no stub: everything unlisted gets the default.
        let plain = try SeccompFilter.compile(try profile("""
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["write", "exit_group", "exit", "brk", "mmap", "munmap", "close"], "action": "SCMP_ACT_ALLOW"}]}
        """))
        XCTAssertEqual(results(plain, [{ Int(kata_syscall3(302, 0, 0, 0)) }]).lines, ["errno \(EPERM)"])
    }

    func testKillTrapAndTraceActions() throws {
        try requireSeccomp()
        for (action, expect) in [("SCMP_ACT_KILL", "killed by signal \(SIGSYS)"), ("SCMP_ACT_KILL_PROCESS", "killed by signal \(SIGSYS)"),
                                 ("SCMP_ACT_KILL_THREAD", "killed by signal \(SIGSYS)"), ("SCMP_ACT_TRAP", "killed by signal \(SIGSYS)")] {
            let p = try SeccompFilter.compile(try profile(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "\#(action)"}]}"#))
            let (_, st) = results(p, [{ Int(kata_syscall3(110, 0, 0, 0)) }])
            XCTAssertEqual(describeWaitStatus(st), expect, action)
        }
        // TRACE with no tracer attached: the kernel fails the call with ENOSYS.
        let trace = try SeccompFilter.compile(try profile(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_TRACE"}, {"names": ["getuid"], "action": "SCMP_ACT_LOG"}]}"#))
        XCTAssertEqual(results(trace, [{ Int(kata_syscall3(110, 0, 0, 0)) }, { Int(getuid()) }]).lines, ["errno \(ENOSYS)", "ok"])
    }

    func testFlagsAndFilterInStatus() throws {
        try requireRootAndBusybox()
        let p = try SeccompFilter.compile(try profile("""
        {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
         "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
        """))
        XCTAssertEqual(p.flags, 2 | 4)
        // Through execve into busybox: the filter stays, mkdir fails with runc's message.
        var proc = busyboxProcess("grep -E '^Seccomp:' /proc/self/status; mkdir \(dir)/d; echo status=$?")
        proc.capabilities = OCI.Process.Capabilities()  // no capabilities at all: loading must come first
        let (out, st) = launch(proc, seccomp: p)
        XCTAssertEqual(describeWaitStatus(st), "exit 0", out)
        XCTAssertTrue(out.contains("Seccomp:\t2"), out)
        XCTAssertTrue(out.contains("Operation not permitted"), out)
        XCTAssertTrue(out.contains("status=1"), out)
        XCTAssertFalse(Posix.exists(dir + "/d"))
    }

    func testLoadOrderFollowsNoNewPrivileges() throws {
        try requireRootAndBusybox()
        let p = try SeccompFilter.compile(try profile(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#))
        // Without no_new_privs the filter needs CAP_SYS_ADMIN, so it must go in before the
        // capabilities are dropped; with it, it goes in last. Both end up filtered.
        for nnp in [false, true] {
            var proc = busyboxProcess("grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status")
            proc.capabilities = OCI.Process.Capabilities()
            proc.capabilities!.bounding = ["CAP_KILL"]; proc.capabilities!.effective = ["CAP_KILL"]; proc.capabilities!.permitted = ["CAP_KILL"]
            proc.noNewPrivileges = nnp
            let (out, st) = launch(proc, seccomp: p)
            XCTAssertEqual(describeWaitStatus(st), "exit 0", out)
            XCTAssertTrue(out.contains("Seccomp:\t2"), out)
            XCTAssertTrue(out.contains("NoNewPrivs:\t\(nnp ? 1 : 0)"), out)
            XCTAssertTrue(out.contains("CapEff:\t0000000000000020"), out)
        }
    }

    func testDockerLikeProfileCompilesAndAShellRuns() throws {
        try requireRootAndBusybox()
        let json = dockerLikeProfile()
        let s = try profile(json)
        XCTAssertGreaterThan(s.syscalls.reduce(0) { $0 + $1.names.count }, 350, "docker's profile has ~350 names")
        let t0 = Posix.monotonicNanos()
        let p = try SeccompFilter.compile(s)
        let ms = Double(Posix.monotonicNanos() - t0) / 1e6
        print("docker-like profile: \(s.syscalls.reduce(0) { $0 + $1.names.count }) names, \(p.instructions.count) BPF instructions, compiled in \(ms) ms")
        var proc = busyboxProcess("echo hello > \(dir)/out && cat \(dir)/out && ls / > /dev/null && unshare -n true; echo unshare=$?")
        // CAP_SYS_ADMIN too, so only the filter can be what refuses unshare.
        let set = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_SYS_ADMIN"]
        proc.capabilities = OCI.Process.Capabilities()
        proc.capabilities!.bounding = set; proc.capabilities!.effective = set; proc.capabilities!.permitted = set
        let (out, st) = launch(proc, seccomp: p)
        XCTAssertEqual(describeWaitStatus(st), "exit 0", out)
        XCTAssertTrue(out.hasPrefix("hello\n"), out)
        XCTAssertTrue(out.contains("unshare=1"), "unshare is not in the profile: \(out)")
    }
}

/// The filter travels from the keeper to the guest inside `create`.
final class SeccompProgramEncodingTests: XCTestCase {
    func testEncodedProgramRoundTrips() throws {
        let s = try XCTUnwrap(try SpecParser.parse(Array(#"""
        {"ociVersion": "1.0.2", "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
         "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}}}
        """#.utf8)).linux.seccomp)
        let p = try SeccompFilter.compile(s)
        XCTAssertEqual(p.flags, 2)
        let back = try SeccompProgram(encoded: p.encoded)
        XCTAssertEqual(back, p)
        XCTAssertEqual(p.encoded.count, 4 + 8 * p.instructions.count)
        for bad in [[], [1, 2, 3], Array(p.encoded.dropLast())] as [[UInt8]] {
            XCTAssertThrowsError(try SeccompProgram(encoded: bad)) {
                XCTAssertTrue("\($0)".hasPrefix("seccomp: malformed filter of"), "\($0)")
            }
        }
    }
}
