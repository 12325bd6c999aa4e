import XCTest
import TestSupport
#if canImport(Glibc)
import Glibc
#endif
import Agent
import OCI
@testable import HostRuntime

final class TOMLTests: XCTestCase {
    func parse(_ text: String) throws(TOMLError) -> [String: TOMLValue] { try TOML.parse(text, file: "test.toml") }

    func testTablesAndValues() throws {
        let t = try parse("""
        # top comment
        top = "level"

        [hypervisor]
        backend = "qemu"        # trailing comment
        path = "/opt/a#b/qemu"
        escaped = "tab\\tnewline\\nquote\\"backslash\\\\"
        vcpus = 4
        negative = -7
        big = 1_000_000
        enabled = true
        disabled = false
        list = ["a", "b c", 'd']
        empty = []
          indented  =   "spaces"   	
        [ runtime ]
        single = 'C:\\dir'
        """)
        XCTAssertEqual(t["top"], .string("level"))
        XCTAssertEqual(t["hypervisor.backend"], .string("qemu"))
        XCTAssertEqual(t["hypervisor.path"], .string("/opt/a#b/qemu"))
        XCTAssertEqual(t["hypervisor.escaped"], .string("tab\tnewline\nquote\"backslash\\"))
        XCTAssertEqual(t["hypervisor.vcpus"], .integer(4))
        XCTAssertEqual(t["hypervisor.negative"], .integer(-7))
        XCTAssertEqual(t["hypervisor.big"], .integer(1_000_000))
        XCTAssertEqual(t["hypervisor.enabled"], .bool(true))
        XCTAssertEqual(t["hypervisor.disabled"], .bool(false))
        XCTAssertEqual(t["hypervisor.list"], .strings(["a", "b c", "d"]))
        XCTAssertEqual(t["hypervisor.empty"], .strings([]))
        XCTAssertEqual(t["hypervisor.indented"], .string("spaces"))
        XCTAssertEqual(t["runtime.single"], .string("C:\\dir"), "literal strings keep backslashes")
        XCTAssertNil(t["backend"])
        XCTAssertEqual(t.count, 13)
    }

    func testCRLFLineEndings() throws {
        // A configuration.toml saved by a Windows editor.
        let t = try parse("[hypervisor]\r\nbackend = \"qemu\"\r\ndefault_vcpus = 2\r\n")
        XCTAssertEqual(t["hypervisor.backend"], .string("qemu"))
        XCTAssertEqual(t["hypervisor.default_vcpus"], .integer(2))
        XCTAssertThrowsError(try parse("a = 1\r\nbad line\r\n")) { e in
            XCTAssertTrue("\(e)".hasPrefix("test.toml:2:"), "\(e)")
        }
    }

    func testQuotedStringsAreNotIntegers() throws {
        let t = try parse("a = \"42\"\nb = 'true'")
        XCTAssertEqual(t["a"], .string("42"))
        XCTAssertEqual(t["b"], .string("true"))
    }

    // Valid TOML whose '#' is inside a string: it must not start a comment.
    func testHashAfterEscapedQuoteInsideString() throws {
        let t = try parse(#"kernel_params = "console=hvc0 label=\"a#b\" quiet" # comment"#)
        XCTAssertEqual(t["kernel_params"], .string("console=hvc0 label=\"a#b\" quiet"))
    }

    func testHashInsideLiteralString() throws {
        let t = try parse("literal = 'tag#1' # comment")
        XCTAssertEqual(t["literal"], .string("tag#1"))
    }

    func testCommaInsideArrayString() throws {
        let t = try parse(#"args = ["-o", "cache=auto,xattr", "-v"]"#)
        XCTAssertEqual(t["args"], .strings(["-o", "cache=auto,xattr", "-v"]))
    }

    func testErrorsNameTheLine() {
        func check(_ text: String, _ expected: String, line: UInt = #line) {
            XCTAssertThrowsError(try parse(text), line: line) { e in
                XCTAssertTrue("\(e)".hasPrefix(expected), "\(e) should start with \(expected)", line: line)
            }
        }
        check("a = 1\nb = 2\nno equals here\n", "test.toml:3: expected key = value")
        check("[ok]\n\n[broken\n", "test.toml:3: unterminated table header")
        check("# c\n = 5\n", "test.toml:2: empty key")
        check("x = 1\ny = nope\n", "test.toml:2: cannot read value for y: nope")
        check("x = \"unterminated\n", "test.toml:1: cannot read value for x")
        check("x = [\"a\", b]\n", "test.toml:1: cannot read value for x")
    }
}

final class ConfigurationTests: XCTestCase {
    var dir = ""
    var saved: [String: String?] = [:]

    override func setUp() {
        dir = makeTempDir("kata-config")
        for k in ["KATA_CONFIG", "KATA_HYPERVISOR"] {
            // updateValue: assigning nil through the subscript would drop the key, and an unset
            // variable would then never be unset again in tearDown.
            saved.updateValue(getenv(k).map { String(cString: $0) }, forKey: k)
            unsetenv(k)
        }
    }

    override func tearDown() {
        for (k, v) in saved {
            if let v { setenv(k, v, 1) } else { unsetenv(k) }
        }
        Posix.removeAll(dir)
    }

    func useConfig(_ text: String) -> String {
        let p = dir + "/configuration.toml"
        writeFile(p, text)
        setenv("KATA_CONFIG", p, 1)
        return p
    }

    func testReadsValuesFromKATA_CONFIG() throws {
        let p = useConfig("""
        [hypervisor]
        backend = "qemu"
        qemu_path = "/opt/qemu/bin/qemu-system-x86_64"
        virtiofsd_path = "/usr/libexec/virtiofsd"
        kernel = "/k/vmlinux"
        initrd = "/k/initrd.img"
        kernel_params = "console=hvc0 quiet"
        default_vcpus = 2
        default_memory = 1024
        accel = "tcg"

        [runtime]
        boot_timeout = 30
        """)
        let c = try Configuration.load()
        XCTAssertEqual(c.path, p)
        XCTAssertEqual(c.hypervisor, "qemu")
        XCTAssertEqual(c.qemuPath, "/opt/qemu/bin/qemu-system-x86_64")
        XCTAssertEqual(c.virtiofsdPath, "/usr/libexec/virtiofsd")
        XCTAssertEqual(c.kernel, "/k/vmlinux")
        XCTAssertEqual(c.initrd, "/k/initrd.img")
        XCTAssertEqual(c.kernelParams, "console=hvc0 quiet")
        XCTAssertEqual(c.vcpus, 2)
        XCTAssertEqual(c.memoryMiB, 1024)
        XCTAssertEqual(c.accel, "tcg")
        XCTAssertEqual(c.bootTimeout, 30)
    }

    func testMissingKeysKeepDefaults() throws {
        _ = useConfig("[hypervisor]\ndefault_vcpus = 3\n")
        let c = try Configuration.load()
        XCTAssertEqual(c.vcpus, 3)
        XCTAssertEqual(c.hypervisor, Configuration().hypervisor)
        XCTAssertEqual(c.memoryMiB, Configuration().memoryMiB)
        XCTAssertEqual(c.kernel, Configuration().kernel)
    }

    func testRejectsBadBackend() {
        _ = useConfig("[hypervisor]\nbackend = \"vmware\"\n")
        XCTAssertThrowsError(try Configuration.load()) { e in
            XCTAssertTrue("\(e)".contains(#"hypervisor.backend must be auto, qemu or builtin, not "vmware""#), "\(e)")
        }
    }

    func testRejectsBadAccelAndWrongTypes() {
        _ = useConfig("[hypervisor]\naccel = \"hvf\"\n")
        XCTAssertThrowsError(try Configuration.load()) { e in XCTAssertTrue("\(e)".contains("hypervisor.accel"), "\(e)") }
        _ = useConfig("[hypervisor]\ndefault_vcpus = 0\n")
        XCTAssertThrowsError(try Configuration.load()) { e in
            XCTAssertTrue("\(e)".contains("hypervisor.default_vcpus must be a positive integer"), "\(e)")
        }
        _ = useConfig("[hypervisor]\nkernel = 5\n")
        XCTAssertThrowsError(try Configuration.load()) { e in
            XCTAssertTrue("\(e)".contains("hypervisor.kernel must be a string"), "\(e)")
        }
        _ = useConfig("[hypervisor]\nbackend = qemu\n")
        XCTAssertThrowsError(try Configuration.load()) { e in XCTAssertTrue("\(e)".contains(":2:"), "\(e)") }
    }

    func testMissingExplicitFileIsAnError() {
        setenv("KATA_CONFIG", dir + "/nope.toml", 1)
        XCTAssertThrowsError(try Configuration.load()) { e in
            XCTAssertEqual("\(e)", "cannot read configuration \(dir)/nope.toml")
        }
        XCTAssertThrowsError(try Configuration.load(dir + "/other.toml"))
    }

    func testKATA_HYPERVISOROverrides() throws {
        _ = useConfig("[hypervisor]\nbackend = \"builtin\"\n")
        setenv("KATA_HYPERVISOR", "qemu", 1)
        XCTAssertEqual(try Configuration.load().hypervisor, "qemu")
    }

    func testKATA_HYPERVISORIsValidatedToo() {
        _ = useConfig("[hypervisor]\nbackend = \"qemu\"\n")
        setenv("KATA_HYPERVISOR", "vmware", 1)
        XCTAssertThrowsError(try Configuration.load(), "an unknown backend from the environment must be rejected like one from the file")
    }
}

/// Checks YYYY-MM-DDTHH:MM:SS[.fraction]Z and returns the seconds since the epoch.
func parseRFC3339(_ s: String) -> Int? {
    let b = Array(s.utf8)
    guard b.count >= 20, b.last == UInt8(ascii: "Z") else { return nil }
    func digits(_ r: Range<Int>) -> Int? {
        guard r.upperBound <= b.count, r.allSatisfy({ b[$0] >= 0x30 && b[$0] <= 0x39 }) else { return nil }
        return Int(String(decoding: b[r], as: UTF8.self))
    }
    guard let y = digits(0..<4), b[4] == 0x2d, let mo = digits(5..<7), b[7] == 0x2d, let d = digits(8..<10),
          b[10] == UInt8(ascii: "T"), let h = digits(11..<13), b[13] == 0x3a, let mi = digits(14..<16),
          b[16] == 0x3a, let sec = digits(17..<19) else { return nil }
    if b.count > 20 {
        guard b[19] == UInt8(ascii: "."), b.count - 21 >= 1, b.count - 21 <= 9, digits(20..<(b.count - 1)) != nil,
              b[b.count - 2] != UInt8(ascii: "0") else { return nil }
    } else if b[19] != UInt8(ascii: "Z") { return nil }
    guard (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, sec < 61 else { return nil }
    var t = tm()
    t.tm_year = Int32(y - 1900); t.tm_mon = Int32(mo - 1); t.tm_mday = Int32(d)
    t.tm_hour = Int32(h); t.tm_min = Int32(mi); t.tm_sec = Int32(sec)
    return Int(timegm(&t))
}

final class TimestampTests: XCTestCase {
    func testFormatIsRFC3339UTC() {
        XCTAssertNotNil(parseRFC3339("2024-01-02T03:04:05.123456789Z"))
        XCTAssertNotNil(parseRFC3339("2024-01-02T03:04:05Z"))
        XCTAssertNil(parseRFC3339("2024-01-02 03:04:05Z"))
        XCTAssertNil(parseRFC3339("2024-01-02T03:04:05+00:00"))
        for _ in 0..<50 {
            let s = Timestamp.now()
            guard let t = parseRFC3339(s) else { XCTFail("not RFC 3339 UTC: \(s)"); return }
            XCTAssertLessThanOrEqual(abs(t - Int(time(nil))), 2, "\(s) is not now")
        }
    }
}

final class LoggerTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir("kata-log") }
    override func tearDown() { Posix.removeAll(dir) }

    func testJSONLines() throws {
        let path = dir + "/log.json"
        writeFile(path, "{\"level\":\"info\",\"msg\":\"earlier line\",\"time\":\"x\"}\n")
        let log = Logger(path: path, format: .json, debug: false)
        log.error("container \"c1\" failed:\nmount <proc>")
        log.warning("w")
        log.info("i")
        log.debug("not written without --debug")
        let lines = try XCTUnwrap(readText(path)).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 4, "appends one line per message: \(lines)")
        var parsed: [JSON] = []
        for l in lines { parsed.append(try JSONParser.parse(l)) }
        XCTAssertEqual(parsed[0]["msg"]?.string, "earlier line", "the log is appended to, not truncated")
        for p in parsed.dropFirst() {
            XCTAssertEqual(p.objectPairs?.map(\.0), ["level", "msg", "time"])
            XCTAssertNotNil(parseRFC3339(p["time"]?.string ?? ""), "\(p)")
        }
        XCTAssertEqual(parsed[1]["level"]?.string, "error")
        XCTAssertEqual(parsed[1]["msg"]?.string, "container \"c1\" failed:\nmount <proc>")
        XCTAssertEqual(parsed[2]["level"]?.string, "warning")
        XCTAssertEqual(parsed[3]["level"]?.string, "info")
    }

    func testDebugAndTextFormat() throws {
        let path = dir + "/log.txt"
        let log = Logger(path: path, format: .text, debug: true)
        log.debug("hello \"world\"")
        let text = try XCTUnwrap(readText(path))
        XCTAssertTrue(text.hasPrefix("time=\""), text)
        XCTAssertTrue(text.hasSuffix(" level=debug msg=\"hello \\\"world\\\"\"\n"), text)
        XCTAssertEqual(text.split(separator: "\n").count, 1)
    }
}
