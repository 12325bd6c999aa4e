#if canImport(Glibc)
import Glibc
#endif
import XCTest

/// Compiles a test guest (C text) into a flat binary loaded at 1 MiB: gcc -ffreestanding with
/// no SSE/MMX/x87 code generation, linked by GuestRuntime.linkerScript, then objcopy -O binary.
enum GuestBuilder {
    nonisolated(unsafe) static var cache: [String: [UInt8]] = [:]
    nonisolated(unsafe) static var workDir: String?
    nonisolated(unsafe) static var created: Set<String> = []

    /// Removes the build directory (called from the KVM tests' class tearDown).
    static func cleanUp() {
        guard let d = workDir else { return }
        for f in created { unlink(f) }
        unlink(d + "/tool.log")
        rmdir(d)
        workDir = nil
        created = []
        cache = [:]
    }

    static let cflags = [
        "-ffreestanding", "-nostdlib", "-static", "-O1", "-m64", "-march=x86-64",
        "-mno-sse", "-mno-sse2", "-mno-mmx", "-mno-80387", "-mgeneral-regs-only", "-mno-red-zone",
        "-fno-pic", "-no-pie", "-fno-stack-protector", "-fcf-protection=none",
        "-fno-asynchronous-unwind-tables", "-Wl,--build-id=none", "-Wall", "-Werror",
    ]

    static func build(_ name: String, _ body: String) throws -> [UInt8] {
        if let bin = cache[name] { return bin }
        let dir = try directory()
        let src = "\(dir)/\(name).c", ld = "\(dir)/guest.ld", elf = "\(dir)/\(name).elf", bin = "\(dir)/\(name).bin"
        try writeFile(ld, GuestRuntime.linkerScript)
        try writeFile(src, GuestRuntime.header + "\n" + body + "\n")
        try run(["/usr/bin/gcc"] + cflags + ["-T", ld, "-o", elf, src])
        created.formUnion([elf, bin])
        try run(["/usr/bin/objcopy", "-O", "binary", elf, bin])
        let bytes = try readFile(bin)
        cache[name] = bytes
        return bytes
    }

    /// Builds the guest and returns the path of its ELF (linked at 1 MiB, entry `_start`), which
    /// the Linux loader takes as a "vmlinux" and enters through the 64-bit boot protocol.
    static func buildELF(_ name: String, _ body: String) throws -> String {
        _ = try build(name, body)
        return "\(try directory())/\(name).elf"
    }

    static func directory() throws -> String {
        if let d = workDir { return d }
        var template = Array("/tmp/vmm-guests-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw XCTSkip("mkdtemp failed") }
        let d = String(cString: p)
        workDir = d
        return d
    }

    static func writeFile(_ path: String, _ text: String) throws {
        guard let f = fopen(path, "w") else { throw BuildError("cannot write \(path)") }
        created.insert(path)
        fputs(text, f)
        fclose(f)
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "r") else { throw BuildError("cannot read \(path)") }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    /// Runs a tool, failing with its output when it exits non-zero.
    static func run(_ argv: [String]) throws {
        guard access(argv[0], X_OK) == 0 else { throw XCTSkip("\(argv[0]) is not installed; cannot build test guests") }
        let log = (try directory()) + "/tool.log"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cargs, environ)
        guard rc == 0 else { throw BuildError("posix_spawn \(argv[0]): \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if status != 0 {
            let out = String(decoding: (try? readFile(log)) ?? [], as: UTF8.self)
            throw BuildError("\(argv.joined(separator: " ")) failed:\n\(out)")
        }
    }

    struct BuildError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }
}
