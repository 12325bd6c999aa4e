#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import HostRuntime
import OCI

/// `exec`: another process in a running container, with runc's flags. Without --detach
/// this process relays until the exec'd one exits and exits with its status; with
/// --detach a small relay child does that, and its PID goes to --pid-file.
enum ExecCommand {
    static let flags = [
        FlagSpec("console-socket", value: true), FlagSpec("cwd", value: true), FlagSpec("env", "e", value: true),
        FlagSpec("tty", "t"), FlagSpec("user", "u", value: true), FlagSpec("additional-gids", "g", value: true),
        FlagSpec("process", "p", value: true), FlagSpec("detach", "d"), FlagSpec("pid-file", value: true),
        FlagSpec("process-label", value: true), FlagSpec("apparmor", value: true), FlagSpec("no-new-privs"),
        FlagSpec("cap", "c", value: true), FlagSpec("preserve-fds", value: true), FlagSpec("ignore-paused"),
        FlagSpec("cgroup", value: true),
    ]

    static func run(_ ctx: Context, _ a: ParsedArgs) throws(RuntimeError) -> Int32 {
        let id = a.positionals[0]
        let store = ctx.store
        let st = try store.load(id)
        switch store.currentStatus(st) {
        case .stopped: throw RuntimeError("cannot exec in a stopped container")
        case .paused: throw RuntimeError("cannot exec in a paused container")
        case .creating: throw RuntimeError("container \(id) is still being created")
        default: break
        }
        // Our fds 3, 4, ... go to the keeper, which relays them as the process's (PreservedFDs).
        let preserved = PreservedFDs.numbers(try PreservedFDs.count(a.value("preserve-fds")))
        _ = try PreservedFDs.check(preserved, own: [ctx.logger.logFD])
        let process = try processJSON(a, bundle: st.bundle)
        let caps = (try? SpecParser.parseProcess(Array(JSONWriter.write(process).utf8)))?.capabilities
        Lifecycle.warnUnknownCapabilities(ctx, caps ?? (try? Bundle.load(st.bundle))?.spec.process?.capabilities)
        let tty = process["terminal"]?.bool ?? false
        var stdio: [Int32] = [0, 1, 2]
        var hostPty: Int32 = -1
        if let sock = a.value("console-socket") {
            guard tty else { throw RuntimeError("cannot use console socket if runc will not allocate tty") }
            let pair = try HostTerminal.openPair()
            if let size = HostTerminal.size(0) { HostTerminal.setSize(pair.master, rows: size.rows, cols: size.cols) }
            do { try HostTerminal.sendToConsoleSocket(sock, master: pair.master) } catch { close(pair.master); close(pair.slave); throw error }
            close(pair.master)
            hostPty = pair.slave
            stdio = [pair.slave, pair.slave, pair.slave]
        } else if tty && a.flag("detach") {
            throw RuntimeError("cannot allocate tty if runc will detach without setting console socket")
        }
        let (conn, stream) = try ControlSocket.exec(stateDir: store.directory(id), process: Array(JSONWriter.write(process).utf8),
                                                    stdio: stdio, preserved: preserved, tty: tty)
        if hostPty >= 0 { close(hostPty) }
        // The keeper holds them now; our copies would hide their end from readers.
        for fd in preserved { close(fd) }
        if a.flag("detach") { return try detach(conn, pidFile: a.value("pid-file")) }
        if let pf = a.value("pid-file") { try? Posix.writeFileAtomic(pf, Array(String(getpid()).utf8)) }
        try? Posix.writeAll(conn, Array("relay \(getpid())\n".utf8))
        return wait(conn, stream: stream, stateDir: store.directory(id))
    }

    /// config.json's process with runc exec's overrides, or --process's file as given.
    static func processJSON(_ a: ParsedArgs, bundle: String) throws(RuntimeError) -> JSON {
        if let path = a.value("process") {
            let bytes: [UInt8]
            do { bytes = try Posix.readFile(path) } catch { throw RuntimeError("read process file \(path): \(error)") }
            do { _ = try SpecParser.parseProcess(bytes, file: path) } catch { throw RuntimeError(error.message) }
            do { return try JSONParser.parse(bytes) } catch { throw RuntimeError("\(path): \(error)") }
        }
        var args = Array(a.positionals.dropFirst())
        if args.first == "--" { args.removeFirst() }  // runc exec ID -- cmd
        guard !args.isEmpty else { throw RuntimeError("exec args cannot be empty") }
        let spec = try Bundle.load(bundle).spec
        var p = spec.raw["process"] ?? .object([])
        p = p.setting("args", .array(args.map(JSON.init)))
        p = p.setting("terminal", JSON(a.flag("tty")))
        var env = p["env"]?.array ?? []
        env += a.all("env").map(JSON.init)
        p = p.setting("env", .array(env))
        if let cwd = a.value("cwd") { p = p.setting("cwd", JSON(cwd)) }
        if let u = a.value("user") {
            let parts = u.split(separator: ":", omittingEmptySubsequences: false)
            guard let uid = Int(parts[0]), parts.count <= 2, parts.count == 1 || Int(parts[1]) != nil else {
                throw RuntimeError("invalid --user \"\(u)\": expected uid[:gid] as numbers")
            }
            var user = p["user"] ?? .object([])
            user = user.setting("uid", JSON(uid))
            if parts.count == 2 { user = user.setting("gid", JSON(Int(parts[1])!)) }
            p = p.setting("user", user)
        }
        if !a.all("additional-gids").isEmpty {
            var gids: [JSON] = []
            for g in a.all("additional-gids") {
                guard let v = Int(g), v >= 0 else { throw RuntimeError("invalid --additional-gids \"\(g)\"") }
                gids.append(JSON(v))
            }
            p = p.setting("user", (p["user"] ?? .object([])).setting("additionalGids", .array(gids)))
        }
        if a.flag("no-new-privs") { p = p.setting("noNewPrivileges", JSON(true)) }
        if !a.all("cap").isEmpty {
            var caps = p["capabilities"] ?? .object([])
            for set in ["bounding", "effective", "permitted", "ambient"] {
                caps = caps.setting(set, .array((caps[set]?.array ?? []) + a.all("cap").map(JSON.init)))
            }
            p = p.setting("capabilities", caps)
        }
        if a.flag("tty"), let size = HostTerminal.size(0) {
            p = p.setting("consoleSize", .object([("height", JSON(Int(size.rows))), ("width", JSON(Int(size.cols)))]))
        }
        return p
    }

    /// Forks the relay that lives as long as the exec'd process and exits with its status.
    static func detach(_ conn: Int32, pidFile: String?) throws(RuntimeError) -> Int32 {
        let pid = kata_fork()
        if pid < 0 { throw RuntimeError("fork relay: \(String(cString: strerror(errno)))") }
        if pid == 0 {
            // Hold none of the caller's stdio: a shim waits for those pipes to close.
            let null = open("/dev/null", O_RDWR)
            for fd: Int32 in 0...2 { dup2(null, fd) }
            kata_close_all_but(conn)  // nor any other fd: whoever waits on those would wait for us
            try? Posix.writeAll(conn, Array("relay \(getpid())\n".utf8))  // so `ps` can list us
            _exit(ControlSocket.waitExit(conn) ?? 255)
        }
        close(conn)
        if let pf = pidFile {
            do { try Posix.writeFileAtomic(pf, Array(String(pid).utf8)) }
            catch { throw RuntimeError("write pid file \(pf): \(error)") }
        }
        return 0
    }

    /// Waits for the exit status, forwarding the signals we receive to the exec'd process.
    static func wait(_ conn: Int32, stream: UInt32, stateDir: String) -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        let forwarded = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2]
        for s in forwarded { sigaddset(&set, s) }
        sigprocmask(SIG_BLOCK, &set, nil)
        let sigfd = kata_signalfd(-1, &set)
        defer { close(sigfd) }
        while true {
            var fds = [pollfd(fd: conn, events: Int16(POLLIN), revents: 0), pollfd(fd: sigfd, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 { if errno == EINTR { continue }; return 255 }
            if fds[1].revents != 0 {
                var info = signalfd_siginfo()
                while read(sigfd, &info, MemoryLayout<signalfd_siginfo>.size) > 0 {
                    // Terminal-generated signals (SI_KERNEL) already reached the process through its tty.
                    if info.ssi_code == 0x80 { continue }
                    _ = try? ControlSocket.request(stateDir: stateDir, "signal \(stream) \(info.ssi_signo)", timeoutMs: 5000)
                }
            }
            if fds[0].revents != 0 { return ControlSocket.waitExit(conn) ?? 255 }
        }
    }
}
