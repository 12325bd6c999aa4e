import CShims
import Foundation
import XCTest

/// process.terminal with --console-socket (docker run -t, podman run -t, exec -t).
final class TerminalTests: XCTestCase {
    var h: Harness!

    override func setUpWithError() throws {
        try Harness.requireVMs()
        h = try Harness()
        _ = kata_set_child_subreaper()
    }

    override func tearDown() { h?.assertClean() }

    func testTerminalContainerThroughConsoleSocket() throws {
        let b = try h.bundle(args: ["sh"]) { c in
            var p = c["process"] as! [String: Any]
            p["terminal"] = true
            c["process"] = p
        }
        let console = try ConsoleReceiver(directory: h.work)
        let pidFile = h.work + "/tty.pid"
        var create: Harness.Result?
        let t = Thread { create = try? self.h.runDetached(["create", "--bundle", b, "--console-socket", console.path, "--pid-file", pidFile, "tty"], name: "create") }
        t.start()
        let master = try XCTUnwrap(console.receive(), "no pty master on the console socket")
        XCTAssertEqual(isatty(master), 1)
        while create == nil { usleep(20_000) }
        XCTAssertEqual(create?.status, 0, create?.stderr ?? "")
        console.resize(rows: 40, cols: 100)
        XCTAssertEqual(try h.run(["start", "tty"]).status, 0)

        console.type("stty size; tty; echo $$\n")
        let first = console.read(until: "\n1\r\n")
        XCTAssertTrue(first.contains("40 100"), first)
        XCTAssertTrue(first.contains("/dev/pts/0"), first)

        console.resize(rows: 33, cols: 111)
        usleep(600_000)  // the keeper polls sizes every 200 ms
        console.type("stty size\n")
        let second = console.read(until: "33 111")
        XCTAssertTrue(second.contains("33 111"), second)

        console.type("exit 4\n")
        let pid = try XCTUnwrap(Int32(h.read(pidFile)))
        var st: Int32 = 0
        XCTAssertEqual(waitpid(pid, &st, 0), pid)
        XCTAssertEqual(kata_wexitstatus(st), 4)
        XCTAssertEqual(try h.run(["delete", "tty"]).status, 0)
    }

    func testExecWithTerminal() throws {
        let b = try h.bundle(args: ["sleep", "1000"])
        XCTAssertEqual(try h.runDetached(["run", "-d", "--bundle", b, "box"], name: "run").status, 0)
        let console = try ConsoleReceiver(directory: h.work)
        let pidFile = h.work + "/exec.pid"
        var exec: Harness.Result?
        let t = Thread { exec = try? self.h.runDetached(["exec", "-t", "-d", "--console-socket", console.path, "--pid-file", pidFile, "box", "sh"], name: "exec") }
        t.start()
        XCTAssertNotNil(console.receive())
        while exec == nil { usleep(20_000) }
        XCTAssertEqual(exec?.status, 0, exec?.stderr ?? "")
        console.resize(rows: 25, cols: 90)
        usleep(600_000)
        console.type("tty; stty size; exit 9\n")
        let out = console.read(until: "25 90")
        XCTAssertTrue(out.contains("/dev/pts/"), out)
        XCTAssertTrue(out.contains("25 90"), out)
        let pid = try XCTUnwrap(Int32(h.read(pidFile)))
        var st: Int32 = 0
        XCTAssertEqual(waitpid(pid, &st, 0), pid)
        XCTAssertEqual(kata_wexitstatus(st), 9)
        XCTAssertEqual(try h.run(["delete", "-f", "box"]).status, 0)
    }

    func testRunWithTheCallersTerminal() throws {
        let b = try h.bundle(args: ["sh"]) { c in
            var p = c["process"] as! [String: Any]
            p["terminal"] = true
            c["process"] = p
        }
        let tty = try ConsoleReceiver(ptyIn: h.work)
        tty.resize(rows: 40, cols: 120)
        let slave = tty.openSlave()
        XCTAssertGreaterThanOrEqual(slave, 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harness.binary)
        p.arguments = ["--root", h.root, "run", "--bundle", b, "interactive"]
        p.environment = Harness.environment()
        let handle = FileHandle(fileDescriptor: slave, closeOnDealloc: true)
        p.standardInput = handle; p.standardOutput = handle; p.standardError = handle
        try p.run()
        tty.type("stty size; echo hello-$((6*7))\n")
        let first = tty.read(until: "hello-42")
        XCTAssertTrue(first.contains("40 120"), first)
        tty.resize(rows: 30, cols: 100)
        usleep(600_000)
        tty.type("stty size\n")
        XCTAssertTrue(tty.read(until: "30 100").contains("30 100"))
        tty.type("exit 7\n")
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 7)
    }

    func testTerminalNeedsConsoleSocketWhenDetached() throws {
        let b = try h.bundle(args: ["sh"]) { c in
            var p = c["process"] as! [String: Any]
            p["terminal"] = true
            c["process"] = p
        }
        let r = try h.run(["create", "--bundle", b, "x"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("console socket"), r.stderr)
        let noTTY = try h.bundle("plain", args: ["true"])
        let r2 = try h.run(["create", "--bundle", noTTY, "--console-socket", h.work + "/nope.sock", "y"])
        XCTAssertTrue(r2.stderr.contains("will not allocate tty"), r2.stderr)
    }
}
