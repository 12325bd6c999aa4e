import Foundation
import XCTest

/// Runs the installed kata-runtime the way a user or a container engine does, with a
/// private --root per test, and checks that nothing is left behind afterwards.
struct Harness {
    static let binary = ProcessInfo.processInfo.environment["KATA_RUNTIME_BIN"] ?? "/usr/local/bin/kata-runtime"
    let root: String
    let work: String

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Skips (with the reason printed) unless this host can run VMs through the runtime.
    static func requireVMs() throws {
        guard getuid() == 0 else { throw XCTSkip("end-to-end tests need root (namespaces, virtiofsd)") }
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw XCTSkip("\(binary) is not installed; run scripts/setup.sh")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
            throw XCTSkip("qemu-system-x86_64 is not installed")
        }
        for f in guestImage where !FileManager.default.fileExists(atPath: f) {
            throw XCTSkip("guest image \(f) missing; run scripts/setup.sh")
        }
        guard FileManager.default.fileExists(atPath: "/bin/busybox") else { throw XCTSkip("busybox-static is not installed") }
    }

    init() throws {
        work = NSTemporaryDirectory() + "kata-e2e-" + UUID().uuidString.prefix(8)
        root = work + "/root"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    /// A busybox bundle with `args`, made from `runc spec`'s defaults.
    func bundle(_ name: String = "bundle", args: [String], pidNamespace: Bool = true,
                edit: (inout [String: Any]) -> Void = { _ in }) throws -> String {
        let dir = work + "/" + name
        let bin = dir + "/rootfs/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try Self.copyFile("/bin/busybox", to: bin + "/busybox")
        for tool in ["sh", "echo", "cat", "uname", "true", "false", "sleep", "ls", "id", "hostname", "env", "kill", "pwd", "wc", "trap"] {
            try? FileManager.default.createSymbolicLink(atPath: bin + "/" + tool, withDestinationPath: "busybox")
        }
        for d in ["proc", "sys", "dev", "tmp", "etc"] {
            try FileManager.default.createDirectory(atPath: dir + "/rootfs/" + d, withIntermediateDirectories: true)
        }
        var config = Self.defaultSpec(args: args)
        if !pidNamespace, var linux = config["linux"] as? [String: Any], let ns = linux["namespaces"] as? [[String: Any]] {
            linux["namespaces"] = ns.filter { ($0["type"] as? String) != "pid" }
            config["linux"] = linux
        }
        edit(&config)
        let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: dir + "/config.json"))
        return dir
    }

    static func defaultSpec(args: [String]) -> [String: Any] {
        [
            "ociVersion": "1.0.2",
            "process": [
                "terminal": false, "user": ["uid": 0, "gid": 0], "args": args,
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/", "noNewPrivileges": true,
                "rlimits": [["type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024]],
            ] as [String: Any],
            "root": ["path": "rootfs", "readonly": false],
            "hostname": "kata-e2e",
            "mounts": [
                ["destination": "/proc", "type": "proc", "source": "proc"],
                ["destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]],
                ["destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]],
                ["destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]],
                ["destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]],
                ["destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]],
            ],
            "linux": [
                "namespaces": [["type": "pid"], ["type": "network"], ["type": "ipc"], ["type": "uts"], ["type": "mount"]],
                "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            ] as [String: Any],
        ]
    }

    /// Runs `kata-runtime --root R args...` and waits for it.
    @discardableResult
    func run(_ args: [String], cwd: String? = nil, stdin: String? = nil, globals: [String] = [],
             environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.environment = Self.environment(environment)
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["--root", root] + globals + args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let inPipe = Pipe()
        p.standardInput = stdin == nil ? FileHandle.nullDevice : inPipe
        try p.run()
        if let s = stdin {
            inPipe.fileHandleForWriting.write(s.data(using: .utf8)!)
            try inPipe.fileHandleForWriting.close()
        }
        // Read both pipes to the end (a keeper of a created container holds them open,
        // so callers of `create` must use `runDetached`).
        let o = Self.readAll(out.fileHandleForReading.fileDescriptor)
        let e = Self.readAll(err.fileHandleForReading.fileDescriptor)
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self))
    }

    /// Runs a command whose children may keep stdio open (create, run -d): output goes to files.
    @discardableResult
    /// The runtime's environment: ours without KATA_* overrides (another suite in this process
    /// may have set them), plus what the test asks for. KATA_CONFIG as the suite was started
    /// with (a private install's configuration) is kept.
    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KATA_") }
        if let c = startConfig { env["KATA_CONFIG"] = c }
        return env.merging(extra) { $1 }
    }

    /// KATA_CONFIG from the environment this process started with (/proc/self/environ does not
    /// see later setenv calls of other suites).
    static let startConfig: String? = {
        guard let d = FileManager.default.contents(atPath: "/proc/self/environ") else { return nil }
        for entry in d.split(separator: 0) {
            let s = String(decoding: entry, as: UTF8.self)
            if s.hasPrefix("KATA_CONFIG=") { return String(s.dropFirst("KATA_CONFIG=".count)) }
        }
        return nil
    }()

    /// The guest kernel and initrd the runtime will use: from KATA_CONFIG when given.
    static var guestImage: [String] {
        var files = ["kernel": "/usr/share/kata-runtime/vmlinux", "initrd": "/usr/share/kata-runtime/kata-initrd.img"]
        if let c = startConfig, let text = try? String(contentsOfFile: c, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let kv = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if kv.count == 2, files[kv[0]] != nil { files[kv[0]] = kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            }
        }
        return [files["kernel"]!, files["initrd"]!]
    }

    /// runc, where installed (Debian's package): the reference the comparison tests run beside us.
    static let runcPath = ["/usr/sbin/runc", "/usr/bin/runc"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs runc with state under `root`, stdio in files (no terminal, no pipes left open).
    func runc(root: String, _ args: [String]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.runcPath!)
        p.arguments = ["--root", root] + args
        let out = work + "/runc.out", err = work + "/runc.err"
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: err, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: out)
        p.standardError = FileHandle(forWritingAtPath: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: read(out), stderr: read(err))
    }

    func runDetached(_ args: [String], name: String, cwd: String? = nil, environment: [String: String] = [:]) throws -> Result {
        let outPath = work + "/\(name).out", errPath = work + "/\(name).err"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["--root", root] + args
        p.environment = Self.environment(environment)
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        p.standardOutput = FileHandle(forWritingAtPath: outPath)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: read(outPath), stderr: read(errPath))
    }

    /// Reads to end of file, retrying reads a signal interrupted (Foundation's
    /// cp with EINTR retries: FileManager.copyItem fails with EINTR when a child of the test
    /// process exits during the copy (Foundation's Process handles SIGCHLD).
    static func copyFile(_ from: String, to: String, mode: mode_t = 0o755) throws {
        let src = open(from, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(src) }
        let dst = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard dst >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(dst) }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = Glibc.read(src, &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            if n == 0 { return }
            var off = 0
            while off < n {
                let w = buf[off..<n].withUnsafeBytes { Glibc.write(dst, $0.baseAddress, $0.count) }
                if w < 0 && errno == EINTR { continue }
                if w < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                off += w
            }
        }
    }

    /// readDataToEndOfFile traps on EINTR, which children exiting around us can cause).
    static func readAll(_ fd: Int32) -> Data {
        var out = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(fd, &buf, buf.count)
            if n > 0 { out.append(contentsOf: buf[0..<n]); continue }
            if n < 0 && errno == EINTR { continue }
            return out
        }
    }

    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func stateJSON(_ id: String) throws -> [String: Any] {
        let r = try run(["state", id])
        guard r.status == 0 else { throw NSError(domain: "state", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: r.stderr]) }
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    }

    /// Host processes whose command line mentions this test's directory (keepers, qemu, virtiofsd).
    func leftoverProcesses() -> [String] {
        var out: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), pid != getpid() else { continue }
            guard let cmd = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(name)/cmdline")) else { continue }
            let line = String(decoding: cmd.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            let cwd = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(name)/cwd")) ?? ""
            if line.contains(work) || cwd.hasPrefix(work) {
                if let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8), stat.contains(") Z ") { continue }
                out.append("\(pid): \(line)")
            }
        }
        return out
    }

    func leftoverMounts() -> [String] {
        let info = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return info.split(separator: "\n").map(String.init).filter { $0.contains(work) }
    }

    func stateDirectories() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] }

    /// Asserts that no process, mount or state directory of this test remains, then removes the work dir.
    func assertClean(file: StaticString = #filePath, line: UInt = #line) {
        var procs: [String] = []
        for _ in 0..<100 {  // a keeper may still be finishing its teardown
            procs = leftoverProcesses()
            if procs.isEmpty { break }
            usleep(50_000)
        }
        XCTAssertEqual(procs, [], "processes left behind", file: file, line: line)
        XCTAssertEqual(leftoverMounts(), [], "mounts left behind", file: file, line: line)
        XCTAssertEqual(stateDirectories(), [], "state directories left behind", file: file, line: line)
        for p in procs { if let pid = Int32(p.split(separator: ":")[0]) { kill(pid, SIGKILL) } }
        try? FileManager.default.removeItem(atPath: work)
    }
}
