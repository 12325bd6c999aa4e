import CShims
import Foundation
import XCTest

/// `--preserve-fds N` for exec, create/start and run, as a shell user (`3>file`) or podman
/// (socket activation) uses it: the caller's fds 3, 4, ... reach the container process as
/// pipes, socketpairs or listening sockets relayed through the VM's agent channel.
final class PreservedFDTests: XCTestCase {
    var h: Harness!
    var opened: [Int32] = []

    override func setUpWithError() throws {
        try Harness.requireVMs()
        h = try Harness()
        _ = kata_set_child_subreaper()  // detached relays are re-parented to us, as to a shim
        signal(SIGPIPE, SIG_IGN)
    }

    override func tearDown() {
        for fd in opened { close(fd) }
        guard let h else { return }
        for id in ["box", "r1", "c1", "bad"] { _ = try? h.run(["delete", "--force", id]) }
        for id in ["runc1"] { _ = try? runc(["delete", "--force", id]) }
        h.assertClean()
    }

    // MARK: helpers

    /// A container that sleeps, for exec.
    func startBox(edit: (String) throws -> Void = { _ in }) throws {
        let b = try h.bundle(args: ["sleep", "1000"])
        try edit(b)
        let r = try h.runDetached(["run", "-d", "--bundle", b, "box"], name: "run")
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    func pipe() -> (read: Int32, write: Int32) {
        var p: [Int32] = [0, 0]
        precondition(kata_pipe2(&p, Int32(O_CLOEXEC)) == 0)
        opened += p
        return (p[0], p[1])
    }

    func closeOurs(_ fd: Int32) {
        close(fd)
        opened.removeAll { $0 == fd }
    }

    /// Starts kata-runtime with `fds` as its fds 3, 4, ... (what `3>file 4<&0` does in a
    /// shell) and nothing else above 2; stdout and stderr go to files.
    func spawn(_ args: [String], fds: [Int32], name: String, runtime: String = Harness.binary,
               root: String? = nil) throws -> pid_t {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        // Out of the way of 3, 4, ... first, so one mapping cannot clobber another's source.
        let high = fds.map { kata_fcntl_int($0, F_DUPFD_CLOEXEC, 300) }
        defer { for fd in high { close(fd) } }
        for (i, fd) in high.enumerated() { posix_spawn_file_actions_adddup2(&fa, fd, Int32(3 + i)) }
        for fd in (3 + fds.count)..<256 { posix_spawn_file_actions_addclose(&fa, Int32(fd)) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, h.work + "/\(name).out", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&fa, 2, h.work + "/\(name).err", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = ([runtime, "--root", root ?? h.root] + args).map { strdup($0) } + [nil]
        let envp = Harness.environment().map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, runtime, &fa, nil, argv, envp)
        guard rc == 0 else { throw NSError(domain: "spawn", code: Int(rc)) }
        return pid
    }

    func finish(_ pid: pid_t, name: String) -> Harness.Result {
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        let code = kata_wifexited(st) != 0 ? kata_wexitstatus(st) : 128 + kata_wtermsig(st)
        return Harness.Result(status: code, stdout: h.read(h.work + "/\(name).out"), stderr: h.read(h.work + "/\(name).err"))
    }

    func run(_ args: [String], fds: [Int32], name: String = "cmd") throws -> Harness.Result {
        finish(try spawn(args, fds: fds, name: name), name: name)
    }

    /// Reads `fd` to its end (the end must come within `seconds`).
    func readToEnd(_ fd: Int32, seconds: Double = 120, chunk: Int = 65536, pause: useconds_t = 0) -> Data {
        var out = Data()
        let deadline = Date().addingTimeInterval(seconds)
        var buf = [UInt8](repeating: 0, count: chunk)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) > 0 else { continue }
            let n = read(fd, &buf, chunk)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return out }
            out.append(contentsOf: buf[0..<n])
            if pause > 0 { usleep(pause) }
        }
        XCTFail("no end of file within \(seconds) s (got \(out.count) bytes)")
        return out
    }

    func text(_ d: Data) -> String { String(decoding: d, as: UTF8.self) }

    func oneLine(_ s: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(s.split(separator: "\n").count, 1, "one line of error: \(s)", file: file, line: line)
    }

    // MARK: exec

    func testExecWritesToAPreservedPipe() throws {
        try startBox()
        let p = pipe()
        let pid = try spawn(["exec", "--preserve-fds", "1", "box", "sh", "-c", "echo hi >&3; echo out"], fds: [p.write], name: "exec")
        closeOurs(p.write)
        XCTAssertEqual(text(readToEnd(p.read)), "hi\n")
        let r = finish(pid, name: "exec")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "out\n")

        // Detached: the pipe's end comes when the process is done; the relay exits with its status.
        let q = pipe()
        let pidFile = h.work + "/exec.pid"
        let d = try run(["exec", "-d", "--pid-file", pidFile, "--preserve-fds", "1", "box", "sh", "-c", "echo detached >&3; exit 4"],
                        fds: [q.write], name: "execd")
        closeOurs(q.write)
        XCTAssertEqual(d.status, 0, d.stderr)
        XCTAssertEqual(text(readToEnd(q.read)), "detached\n")
        let relay = try XCTUnwrap(Int32(h.read(pidFile)))
        var st: Int32 = 0
        XCTAssertEqual(waitpid(relay, &st, 0), relay)
        XCTAssertEqual(kata_wexitstatus(st), 4)
    }

    func testExecReadsFromAPreservedPipe() throws {
        try startBox()
        let p = pipe()
        XCTAssertEqual(write(p.write, "from the host\n", 14), 14)
        closeOurs(p.write)
        let r = try run(["exec", "--preserve-fds", "1", "box", "sh", "-c", "cat <&3; echo end"], fds: [p.read])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "from the host\nend\n")
    }

    /// A log opened O_APPEND: each write lands at the end, after what others appended meanwhile.
    func testExecAppendsToAFileOpenedForAppending() throws {
        try startBox()
        let path = h.work + "/log.txt"
        try "first\n".write(toFile: path, atomically: false, encoding: .utf8)
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        opened.append(fd)
        XCTAssertEqual(try run(["exec", "--preserve-fds", "1", "box", "sh", "-c", "echo second >&3"], fds: [fd]).status, 0)
        XCTAssertEqual(h.read(path), "first\nsecond\n", "the line is in the file when exec returns")
        let other = open(path, O_WRONLY | O_APPEND)
        XCTAssertEqual(write(other, "host\n", 5), 5)
        close(other)
        XCTAssertEqual(try run(["exec", "--preserve-fds", "1", "box", "sh", "-c", "echo third >&3"], fds: [fd]).status, 0)
        XCTAssertEqual(h.read(path), "first\nsecond\nhost\nthird\n")
    }

    /// Several MB through a preserved pipe whose reader first stalls, then reads slowly: the
    /// writer in the guest is held back (nothing buffers the whole stream) and every byte
    /// arrives in order; the exec's own stdout and status come after.
    func testLargeTransferThroughAPreservedPipeWithASlowReader() throws {
        try startBox()
        let p = pipe()
        let started = Date()
        let pid = try spawn(["exec", "--preserve-fds", "1", "box", "sh", "-c", "busybox seq 1 1000000 >&3; echo done"],
                            fds: [p.write], name: "big")
        closeOurs(p.write)
        sleep(4)
        XCTAssertEqual(h.read(h.work + "/big.out"), "", "the writer is blocked while nobody reads")
        let got = readToEnd(p.read, seconds: 300, chunk: 32768, pause: 2000)
        let elapsed = Date().timeIntervalSince(started)
        let r = finish(pid, name: "big")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "done\n")
        var expected = Data()
        expected.reserveCapacity(6_888_896)
        for i in 1...1_000_000 { expected.append(contentsOf: "\(i)\n".utf8) }
        XCTAssertEqual(got.count, expected.count)
        XCTAssertTrue(got == expected, "the stream arrives intact and in order")
        print("preserved pipe: \(got.count) bytes in \(String(format: "%.1f", elapsed)) s (4 s of it stalled)")
    }

    /// A connected socket: both directions, the client's half-close reaches the process as end
    /// of file, and the process closing fd 3 ends the connection while it keeps running.
    func testConnectedSocketCarriesBothWaysWithHalfClose() throws {
        try startBox()
        var sv: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv), 0)
        opened += sv
        let client = sv[0]
        let pid = try spawn(["exec", "--preserve-fds", "1", "box", "sh", "-c", "cat <&3 >&3; exec 3>&-; sleep 2; echo after"],
                            fds: [sv[1]], name: "echo")
        closeOurs(sv[1])
        let request = String(repeating: "0123456789", count: 20_000)
        let sender = Thread {
            _ = request.withCString { write(client, $0, strlen($0)) }
            shutdown(client, Int32(SHUT_WR))
        }
        sender.start()
        let started = Date()
        let echoed = readToEnd(client)
        XCTAssertEqual(echoed.count, request.utf8.count)
        XCTAssertTrue(text(echoed) == request, "the bytes come back intact")
        let r = finish(pid, name: "echo")
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 1.5, "end of file came before the process exited")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "after\n")
    }

    // MARK: run, create/start

    func testRunWithTwoPreservedFDs() throws {
        let b = try h.bundle(args: ["sh", "-c", "cat <&3 >&4; echo ran"])
        let input = pipe(), output = pipe()
        XCTAssertEqual(write(input.write, "relayed\n", 8), 8)
        closeOurs(input.write)
        let pid = try spawn(["run", "--bundle", b, "--preserve-fds", "2", "r1"], fds: [input.read, output.write], name: "run")
        closeOurs(input.read)
        closeOurs(output.write)
        XCTAssertEqual(text(readToEnd(output.read)), "relayed\n")
        let r = finish(pid, name: "run")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "ran\n")
    }

    /// create takes the fds from its caller; the keeper holds them until start.
    func testCreateThenStartWithPreservedFDs() throws {
        let b = try h.bundle(args: ["sh", "-c", "echo started >&3; exit 7"])
        let p = pipe()
        let c = try run(["create", "--bundle", b, "--preserve-fds", "1", "c1"], fds: [p.write], name: "create")
        closeOurs(p.write)
        XCTAssertEqual(c.status, 0, c.stderr)
        var pf = pollfd(fd: p.read, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&pf, 1, 500), 0, "nothing before start, and the pipe is still held open")
        XCTAssertEqual(try h.run(["start", "c1"]).status, 0)
        XCTAssertEqual(text(readToEnd(p.read)), "started\n")
        for _ in 0..<200 {
            if (try? h.stateJSON("c1")["status"] as? String) == "stopped" { break }
            usleep(50_000)
        }
        XCTAssertEqual(try h.stateJSON("c1")["status"] as? String, "stopped")
        XCTAssertEqual(try h.run(["delete", "c1"]).status, 0)
    }

    // MARK: refusals

    /// What has no guest equivalent: one line naming the fd and its kind, non-zero exit,
    /// nothing left behind, and the container (for exec) unharmed.
    func testUnrepresentableKindsAreRefusedAndLeaveNothing() throws {
        let b = try h.bundle("refused", args: ["true"])
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGUSR2)
        let sigfd = kata_signalfd(-1, &set)
        opened.append(sigfd)
        let create = try run(["create", "--bundle", b, "--preserve-fds", "1", "bad"], fds: [sigfd])
        XCTAssertEqual(create.status, 1)
        XCTAssertTrue(create.stderr.contains("preserved fd 3 is a signalfd"), create.stderr)
        oneLine(create.stderr)
        XCTAssertEqual(h.stateDirectories(), [], "create left a state directory")

        let ok = pipe()
        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        opened.append(udp)
        let run = try self.run(["run", "--bundle", b, "--preserve-fds", "2", "bad"], fds: [ok.write, udp])
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stderr.contains("preserved fd 4 is a datagram socket"), run.stderr)
        oneLine(run.stderr)
        XCTAssertEqual(h.stateDirectories(), [])

        let missing = try self.run(["run", "--bundle", b, "--preserve-fds", "1", "bad"], fds: [])
        XCTAssertTrue(missing.stderr.contains("preserved fd 3 is not open"), missing.stderr)
        XCTAssertEqual(try self.run(["run", "--bundle", b, "--preserve-fds", "x", "bad"], fds: []).status, 1)

        try startBox()
        let dir = open(h.work, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        opened.append(dir)
        let exec = try self.run(["exec", "--preserve-fds", "1", "box", "true"], fds: [dir])
        XCTAssertEqual(exec.status, 255, "exec's own failures exit 255, as runc's")
        XCTAssertTrue(exec.stderr.contains("preserved fd 3 is a directory"), exec.stderr)
        oneLine(exec.stderr)
        XCTAssertEqual(try h.run(["exec", "box", "echo", "still", "fine"]).stdout, "still fine\n")
        XCTAssertEqual(h.stateDirectories(), ["box"])
    }

    // MARK: listening sockets

    static let acceptor = """
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <unistd.h>
    #include <sys/socket.h>
    /* Serves N connections on the listening socket it got as fd 3: names the socket's family,
       then echoes one line back on each. */
    int main(int argc, char **argv) {
        int n = argc > 1 ? atoi(argv[1]) : 1;
        struct sockaddr_storage a; socklen_t l = sizeof a;
        if (getsockname(3, (struct sockaddr *)&a, &l) != 0) { perror("getsockname 3"); return 2; }
        for (int i = 0; i < n; i++) {
            int c = accept(3, NULL, NULL);
            if (c < 0) { perror("accept"); return 3; }
            char line[256]; ssize_t k = read(c, line, sizeof line - 1);
            if (k < 0) k = 0;
            line[k] = 0;
            char reply[300]; int m = snprintf(reply, sizeof reply, "family %d says %s", a.ss_family, line);
            write(c, reply, m);
            close(c);
            printf("served %d\\n", i + 1);
            fflush(stdout);
        }
        return 0;
    }
    """

    /// Builds the acceptor as a static binary into the bundle's rootfs (skips without gcc).
    func installAcceptor(_ bundle: String) throws {
        let cc = "/usr/bin/gcc"
        guard FileManager.default.isExecutableFile(atPath: cc),
              FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/libc.a") else {
            throw XCTSkip("gcc and a static libc are needed to build the socket-activation test program")
        }
        let src = h.work + "/acceptor.c"
        try Self.acceptor.write(toFile: src, atomically: false, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: cc)
        p.arguments = ["-static", "-O", "-o", bundle + "/rootfs/bin/acceptor", src]
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "gcc")
    }

    func connectAndAsk(_ address: sockaddr_storage, _ len: socklen_t, _ line: String) -> String {
        var a = address
        let fd = socket(Int32(a.ss_family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, len) } }
        guard rc == 0 else { return "connect: \(String(cString: strerror(errno)))" }
        _ = line.withCString { write(fd, $0, strlen($0)) }
        return text(readToEnd(fd, seconds: 60))
    }

    /// Socket activation: a listening unix socket and a listening TCP socket as fd 3; each
    /// host connection reaches the container's accept() and carries data both ways.
    func testListeningSocketsAcceptConnectionsInTheContainer() throws {
        try startBox { try self.installAcceptor($0) }
        // A unix listener.
        let path = h.work + "/activate.sock"
        let ul = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        opened.append(ul)
        var ua = sockaddr_un()
        ua.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &ua.sun_path) { b in _ = path.withCString { strncpy(b.baseAddress!.assumingMemoryBound(to: CChar.self), $0, b.count - 1) } }
        let bound = withUnsafePointer(to: &ua) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(ul, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        XCTAssertEqual(bound, 0)
        XCTAssertEqual(listen(ul, 8), 0)
        let pid = try spawn(["exec", "--preserve-fds", "1", "box", "acceptor", "2"], fds: [ul], name: "unix")
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: ua) { dst.copyMemory(from: $0) } }
        let ulen = socklen_t(MemoryLayout<sockaddr_un>.size)
        XCTAssertEqual(connectAndAsk(storage, ulen, "one\n"), "family 1 says one\n")
        XCTAssertEqual(connectAndAsk(storage, ulen, "two\n"), "family 1 says two\n")
        let r = finish(pid, name: "unix")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "served 1\nserved 2\n")

        // A TCP listener on an ephemeral port.
        let tl = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        opened.append(tl)
        var ta = sockaddr_in()
        ta.sin_family = sa_family_t(AF_INET)
        ta.sin_addr.s_addr = inet_addr("127.0.0.1")
        var tlen = socklen_t(MemoryLayout<sockaddr_in>.size)
        XCTAssertEqual(withUnsafePointer(to: &ta) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(tl, $0, tlen) } }, 0)
        XCTAssertEqual(listen(tl, 8), 0)
        _ = withUnsafeMutablePointer(to: &ta) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(tl, $0, &tlen) } }
        let tpid = try spawn(["exec", "--preserve-fds", "1", "box", "acceptor", "1"], fds: [tl], name: "tcp")
        var ts = sockaddr_storage()
        withUnsafeMutableBytes(of: &ts) { dst in withUnsafeBytes(of: ta) { dst.copyMemory(from: $0) } }
        XCTAssertEqual(connectAndAsk(ts, tlen, "tcp\n"), "family 2 says tcp\n")
        let t = finish(tpid, name: "tcp")
        XCTAssertEqual(t.status, 0, t.stderr)
    }

    /// Socket activation as podman does it: create with a listening TCP socket, a client
    /// connects before start and waits in the host socket's backlog, start serves it.
    func testSocketActivationThroughCreateAndStart() throws {
        let b = try h.bundle(args: ["acceptor", "1"])
        try installAcceptor(b)
        let tl = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        opened.append(tl)
        var ta = sockaddr_in6()
        ta.sin6_family = sa_family_t(AF_INET6)
        ta.sin6_addr = in6addr_loopback
        var tlen = socklen_t(MemoryLayout<sockaddr_in6>.size)
        XCTAssertEqual(withUnsafePointer(to: &ta) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(tl, $0, tlen) } }, 0)
        XCTAssertEqual(listen(tl, 8), 0)
        _ = withUnsafeMutablePointer(to: &ta) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(tl, $0, &tlen) } }
        let c = try run(["create", "--bundle", b, "--preserve-fds", "1", "c1"], fds: [tl], name: "create")
        XCTAssertEqual(c.status, 0, c.stderr)
        closeOurs(tl)
        var ts = sockaddr_storage()
        withUnsafeMutableBytes(of: &ts) { dst in withUnsafeBytes(of: ta) { dst.copyMemory(from: $0) } }
        let (address, length) = (ts, tlen)
        let answered = DispatchSemaphore(value: 0)
        final class Box { var reply = "" }
        let box = Box()
        Thread { box.reply = self.connectAndAsk(address, length, "early\n"); answered.signal() }.start()
        usleep(500_000)
        XCTAssertEqual(try h.run(["start", "c1"]).status, 0)
        XCTAssertEqual(answered.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(box.reply, "family 10 says early\n")
        XCTAssertEqual(try h.run(["delete", "--force", "c1"]).status, 0)
    }

    // MARK: runc

    static let runcPath = ["/usr/sbin/runc", "/usr/bin/runc"].first { FileManager.default.isExecutableFile(atPath: $0) }

    func runc(_ args: [String]) throws -> Harness.Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.runcPath ?? "/bin/false")
        p.arguments = ["--root", h.work + "/runc-root"] + args
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return Harness.Result(status: p.terminationStatus, stdout: "", stderr: "")
    }

    /// The same bundle through runc: the process sees the same fd numbers, writes and reads
    /// the same bytes through them, and exits the same way.
    func testSameBehaviourAsRunc() throws {
        guard let runcPath = Self.runcPath else { throw XCTSkip("runc is not installed: nothing to compare with") }
        let b = try h.bundle(args: ["sh", "-c", "ls /proc/self/fd; echo to3 >&3; cat <&4; exit 3"])
        func once(_ runtime: String, _ id: String, root: String) throws -> (Harness.Result, String) {
            let out = pipe(), input = pipe()
            XCTAssertEqual(write(input.write, "from4\n", 6), 6)
            closeOurs(input.write)
            let pid = try spawn(["run", "--bundle", b, "--preserve-fds", "2", id], fds: [out.write, input.read],
                                name: id, runtime: runtime, root: root)
            closeOurs(out.write)
            closeOurs(input.read)
            let data = text(readToEnd(out.read))
            return (finish(pid, name: id), data)
        }
        let (r, rdata) = try once(runcPath, "runc1", root: h.work + "/runc-root")
        let (k, kdata) = try once(Harness.binary, "r1", root: h.root)
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertEqual(k.status, r.status, k.stderr)
        XCTAssertEqual(k.stdout, r.stdout, "the fds the process sees, and what it read from fd 4")
        XCTAssertEqual(kdata, rdata)
        XCTAssertEqual(kdata, "to3\n")
    }
}
