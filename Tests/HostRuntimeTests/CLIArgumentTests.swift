import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import CLI

final class ArgumentParserTests: XCTestCase {
    let specs = [
        FlagSpec("root", value: true), FlagSpec("debug"), FlagSpec("detach", "d"),
        FlagSpec("pid-file", value: true), FlagSpec("env", "e", value: true),
    ]

    func parse(_ a: [String], stop: Bool = false, count: Int = Int.max) throws(UsageError) -> ParsedArgs {
        try ArgumentParser.parse(a[...], specs: specs, command: "create", stopAtPositional: stop, stopAtCount: count)
    }

    func testValueForms() throws {
        XCTAssertEqual(try parse(["--root", "x"]).value("root"), "x")
        XCTAssertEqual(try parse(["--root=x"]).value("root"), "x")
        XCTAssertEqual(try parse(["-root", "x"]).value("root"), "x")
        XCTAssertEqual(try parse(["-root=x"]).value("root"), "x")
        XCTAssertEqual(try parse(["--root=a=b"]).value("root"), "a=b", "only the first = splits")
        XCTAssertEqual(try parse(["--root="]).value("root"), "")
        XCTAssertEqual(try parse(["--root", "-weird"]).value("root"), "-weird", "a value may start with a dash")
        XCTAssertNil(try parse([]).value("root"))
        let r = try parse(["--root", "a", "--root", "b"])
        XCTAssertEqual(r.value("root"), "b", "last one wins")
        XCTAssertEqual(try parse(["-e", "A=1", "--env", "B=2"]).all("env"), ["A=1", "B=2"], "aliases share a key")
    }

    func testBoolFlags() throws {
        XCTAssertTrue(try parse(["--debug"]).flag("debug"))
        XCTAssertTrue(try parse(["-debug"]).flag("debug"))
        XCTAssertTrue(try parse(["-d"]).flag("detach"))
        XCTAssertTrue(try parse(["--detach=true"]).flag("detach"))
        XCTAssertFalse(try parse(["--detach=false"]).flag("detach"))
        XCTAssertFalse(try parse([]).flag("debug"))
        // A bool flag does not swallow the next argument.
        let p = try parse(["--debug", "id"])
        XCTAssertTrue(p.flag("debug"))
        XCTAssertEqual(p.positionals, ["id"])
    }

    func testUnknownFlagErrorText() {
        XCTAssertThrowsError(try parse(["--bogus"])) { e in
            XCTAssertEqual("\(e)", "flag provided but not defined: -bogus (for create)")
        }
        XCTAssertThrowsError(try parse(["--bogus=1"])) { e in
            XCTAssertEqual("\(e)", "flag provided but not defined: -bogus (for create)")
        }
        XCTAssertThrowsError(try ArgumentParser.parse(["-x"][...], specs: specs, command: "")) { e in
            XCTAssertEqual("\(e)", "flag provided but not defined: -x")
        }
        XCTAssertThrowsError(try parse(["--root"])) { e in
            XCTAssertEqual("\(e)", "flag needs an argument: -root")
        }
    }

    func testDoubleDash() throws {
        let p = try parse(["--debug", "--", "--root", "x", "-d"])
        XCTAssertTrue(p.flag("debug"))
        XCTAssertNil(p.value("root"))
        XCTAssertFalse(p.flag("detach"))
        XCTAssertEqual(p.positionals, ["--root", "x", "-d"])
        XCTAssertEqual(try parse(["--", "--"]).positionals, ["--"])
        XCTAssertEqual(try parse(["-"]).positionals, ["-"], "a lone dash is a positional")
    }

    func testFlagsMayFollowPositionals() throws {
        let p = try parse(["id", "--debug", "more"])
        XCTAssertEqual(p.positionals, ["id", "more"])
        XCTAssertTrue(p.flag("debug"))
    }

    func testStopAtPositional() throws {
        // Global flags: everything from the command name on belongs to the command.
        let p = try parse(["--root", "/r", "exec", "--debug", "-d", "id"], stop: true)
        XCTAssertEqual(p.value("root"), "/r")
        XCTAssertFalse(p.flag("debug"))
        XCTAssertEqual(p.positionals, ["exec", "--debug", "-d", "id"])
        // exec: the container id, then the process's own arguments untouched.
        let e = try parse(["-d", "id", "sh", "-c", "--root"], count: 1)
        XCTAssertTrue(e.flag("detach"))
        XCTAssertEqual(e.positionals, ["id", "sh", "-c", "--root"])
    }
}

final class SignalsTests: XCTestCase {
    func testNames() {
        XCTAssertEqual(Signals.parse("9"), 9)
        XCTAssertEqual(Signals.parse("KILL"), SIGKILL)
        XCTAssertEqual(Signals.parse("SIGKILL"), SIGKILL)
        XCTAssertEqual(Signals.parse("sigterm"), SIGTERM)
        XCTAssertEqual(Signals.parse("term"), SIGTERM)
        XCTAssertEqual(Signals.parse("SIGHUP"), SIGHUP)
        XCTAssertEqual(Signals.parse("winch"), SIGWINCH)
        XCTAssertEqual(Signals.parse("15"), 15)
        XCTAssertEqual(Signals.parse("64"), 64)
        XCTAssertEqual(Signals.parse("RTMIN"), 34)
        XCTAssertEqual(Signals.parse("RTMIN+1"), 35)
        XCTAssertEqual(Signals.parse("SIGRTMIN+2"), 36)
        XCTAssertEqual(Signals.parse("rtmin+30"), 64)
        XCTAssertEqual(Signals.parse("RTMAX"), 64)
        XCTAssertEqual(Signals.parse("RTMAX-1"), 63)
        XCTAssertEqual(Signals.parse("SIGRTMAX-30"), 34)
    }

    func testBadNames() {
        for bad in ["", "0", "65", "-1", "-9", "999999999999", "FOO", "SIGFOO", "SIG", "KILL9", " 9", "RTMIN+31", "RTMIN+", "RTMINX", "RTMAX-31"] {
            XCTAssertNil(Signals.parse(bad), bad.debugDescription)
        }
    }

    func testRealtimeOffsetsStayInTheRealtimeRange() {
        // RTMAX+n and RTMIN-n name no real-time signal (65.. is not a signal; 33 is below SIGRTMIN).
        for bad in ["RTMAX+1", "RTMAX+30", "RTMIN-1", "RTMIN-5"] {
            XCTAssertNil(Signals.parse(bad), bad)
        }
    }
}
