import XCTest
@testable import CLI

/// The man pages in man/ (issue 4) must keep up with the command line: a command or flag
/// added to `Commands.all` or `CLI.globalFlags` without documentation fails here.
/// The check goes one way only: pages may describe commands that do not exist yet.
final class ManPageTests: XCTestCase {
    /// <repo>/man, found from this file: Tests/HostRuntimeTests/ManPageTests.swift.
    static let manDirectory: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(3)
        return parts.joined(separator: "/") + "/man"
    }()

    func page(_ name: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        let path = Self.manDirectory + "/" + name
        guard let data = FileManager.default.contents(atPath: path) else {
            XCTFail("missing man page \(path)", file: file, line: line)
            return nil
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Roff source with `\-` turned back into `-`, so `\-\-bundle` and `--bundle` both read `--bundle`.
    static func plain(_ roff: String) -> String { replace(roff, "\\-", "-") }

    /// (Not `replacingOccurrences`: the CLI module declares its own, for single characters.)
    static func replace(_ s: String, _ a: String, _ b: String) -> String {
        s.components(separatedBy: a).joined(separator: b)
    }

    static func isWordByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F
    }

    /// Whether `token` (e.g. `--cap` or `-c`) occurs as a whole option name: not followed by a
    /// name character (so `--cap` is not satisfied by `--capability`) and not preceded by `-`
    /// (so `-b` is not satisfied by `--bundle`).
    static func mentions(_ text: String, _ token: String) -> Bool {
        let t = Array(text.utf8), k = Array(token.utf8)
        guard !k.isEmpty, t.count >= k.count else { return false }
        for i in 0...(t.count - k.count) where t[i] == k[0] && Array(t[i..<(i + k.count)]) == k {
            let before: UInt8 = i > 0 ? t[i - 1] : 0x20
            let after: UInt8 = i + k.count < t.count ? t[i + k.count] : 0x20
            if before != 0x2D && !isWordByte(after) { return true }
        }
        return false
    }

    static func flagTokens(_ spec: FlagSpec) -> [String] {
        spec.names.map { $0.count == 1 ? "-" + $0 : "--" + $0 }
    }

    static var documented: [Command] { Commands.all.filter { !$0.hidden } }

    func testEveryCommandHasAPageDocumentingEachFlag() {
        XCTAssertFalse(Self.documented.isEmpty)
        for cmd in Self.documented {
            guard let roff = page("kata-runtime-\(cmd.name).8") else { continue }
            let text = Self.plain(roff)
            for spec in cmd.flags + [FlagSpec("help", "h")] {
                for token in Self.flagTokens(spec) {
                    XCTAssertTrue(Self.mentions(text, token),
                                  "man/kata-runtime-\(cmd.name).8 does not document \(token) (write it as \\-\\-name or \\-x)")
                }
            }
        }
    }

    func testNameLineMatchesHelpSummary() {
        // `kata-runtime CMD --help` prints the summary; the page's NAME line must say the same.
        for cmd in Self.documented {
            guard let roff = page("kata-runtime-\(cmd.name).8") else { continue }
            let lines = roff.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            guard let i = lines.firstIndex(of: ".SH NAME"), i + 1 < lines.count else {
                XCTFail("man/kata-runtime-\(cmd.name).8 has no .SH NAME section"); continue
            }
            let name = Self.replace(Self.plain(lines[i + 1]), "\\(aq", "'")
            XCTAssertEqual(name, "kata-runtime-\(cmd.name) - \(cmd.summary)",
                           "NAME line of man/kata-runtime-\(cmd.name).8 differs from the --help summary")
        }
    }

    func testMainPageListsEveryCommandAndGlobalFlag() {
        guard let roff = page("kata-runtime.8") else { return }
        let text = Self.plain(roff)
        for cmd in Self.documented {
            XCTAssertTrue(roff.contains("\\fB\(cmd.name)\\fR"), "man/kata-runtime.8 does not list command \(cmd.name) as \\fB\(cmd.name)\\fR")
            let ref = "kata-runtime-\(cmd.name)"
            XCTAssertTrue([ref + " (8)", ref + "(8)", ref + "\\fR(8)"].contains { text.contains($0) },
                          "man/kata-runtime.8 SEE ALSO does not name kata-runtime-\(cmd.name)(8)")
        }
        for spec in CLI.globalFlags {
            for token in Self.flagTokens(spec) {
                XCTAssertTrue(Self.mentions(text, token), "man/kata-runtime.8 does not document global option \(token)")
            }
        }
    }

    func testEveryPageHasTheStandardSections() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.manDirectory).filter { $0.hasSuffix(".8") }
        XCTAssertTrue(files.contains("kata-runtime.8"))
        for f in files.sorted() {
            guard let roff = page(f) else { continue }
            let stem = String(f.dropLast(2))
            XCTAssertTrue(roff.contains(".TH \"\(stem.uppercased())\" 8") || roff.contains(".TH \(stem.uppercased()) 8"),
                          "\(f): .TH header should name \(stem.uppercased()) section 8")
            for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES", "SEE ALSO"] {
                XCTAssertTrue(roff.contains(".SH \(section)\n") || roff.contains(".SH \"\(section)\"\n"), "\(f) has no \(section) section")
            }
        }
    }

    func testMentionsMatchesWholeOptionNamesOnly() {
        XCTAssertTrue(Self.mentions("use --cap X", "--cap"))
        XCTAssertFalse(Self.mentions("use --capability", "--cap"))
        XCTAssertFalse(Self.mentions("--bundle", "-b"))
        XCTAssertTrue(Self.mentions("--bundle, -b dir", "-b"))
        XCTAssertTrue(Self.mentions(Self.plain("\\fB\\-\\-pid\\-file\\fR"), "--pid-file"))
    }
}
