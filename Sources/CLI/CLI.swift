#if canImport(Glibc)
import Glibc
#endif
import Agent
import HostRuntime

/// Entry point for the CLI role: global flags, then one command.
public enum CLI {
    static let globalFlags = [
        FlagSpec("root", value: true), FlagSpec("log", value: true), FlagSpec("log-format", value: true),
        FlagSpec("debug"), FlagSpec("systemd-cgroup"), FlagSpec("rootless", value: true), FlagSpec("criu", value: true),
        FlagSpec("help", "h"), FlagSpec("version", "v"),
    ]

    public static func main(_ argv: [String]) -> Int32 {
        // A keeper may close a control connection before we write to it (an exec'd process
        // that already exited); that is an EPIPE to handle, not a reason to die.
        signal(SIGPIPE, SIG_IGN)
        var ctx = Context()
        let global: ParsedArgs
        do {
            global = try ArgumentParser.parse(argv.dropFirst(), specs: globalFlags, command: "", stopAtPositional: true)
        } catch {
            return fail(ctx, error.description)
        }
        if let r = global.value("root") { ctx.root = r }
        ctx.logPath = global.value("log")
        ctx.debug = global.flag("debug")
        ctx.systemdCgroup = global.flag("systemd-cgroup")
        if let f = global.value("log-format") {
            guard let fmt = Logger.Format(rawValue: f) else { return fail(ctx, "invalid log-format \"\(f)\" (text or json)") }
            ctx.logFormat = fmt
        }
        ctx.logger = Logger(path: ctx.logPath, format: ctx.logFormat, debug: ctx.debug)
        if global.flag("version") { print(Version.text); return 0 }
        guard let name = global.positionals.first else {
            print(help()); return global.flag("help") ? 0 : 1
        }
        if name == "help" {
            if let sub = global.positionals.dropFirst().first, let cmd = Commands.all.first(where: { $0.name == sub }) {
                print(commandHelp(cmd)); return 0
            }
            print(help()); return 0
        }
        guard let cmd = Commands.all.first(where: { $0.name == name }) else {
            return fail(ctx, "unknown command \"\(name)\" (see kata-runtime --help)")
        }
        let rest = argv.dropFirst(argv.count - global.positionals.count + 1)
        do {
            // exec: everything after the container id belongs to the process.
            let a = try ArgumentParser.parse(rest, specs: cmd.flags + [FlagSpec("help", "h")], command: name,
                                             stopAtCount: name == "exec" || name == "ps" ? 1 : Int.max)
            if a.flag("help") { print(commandHelp(cmd)); return 0 }
            guard cmd.positionals.contains(a.positionals.count) else {
                return fail(ctx, "\"\(name)\" requires \(describe(cmd.positionals)) argument(s); usage: kata-runtime \(cmd.usage)")
            }
            ctx.logger.debug("\(name) \(a.positionals.joined(separator: " "))")
            return try cmd.run(&ctx, a)
        } catch let e as RuntimeError {
            return fail(ctx, e.description, code: e.exitCode)
        } catch {
            return fail(ctx, "\(error)")
        }
    }

    static func describe(_ r: ClosedRange<Int>) -> String {
        r.lowerBound == r.upperBound ? "exactly \(r.lowerBound)"
            : r.upperBound == Int.max ? "at least \(r.lowerBound)" : "\(r.lowerBound) to \(r.upperBound)"
    }

    static func fail(_ ctx: Context, _ msg: String, code: Int32 = 1) -> Int32 {
        ctx.logger.error(msg)
        let line = "kata-runtime: " + msg + "\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        return code
    }

    static func help() -> String {
        var s = """
        kata-runtime: an OCI runtime that runs each container in its own lightweight VM

        usage: kata-runtime [global options] command [command options] [arguments...]

        commands:

        """
        for c in Commands.all where !c.hidden { s += "   \(c.name.padding(10))\(c.summary)\n" }
        s += """

        global options:
           --root value        root directory for container state (default: /run/kata-runtime)
           --log value         append log lines to this file
           --log-format value  log format: text or json (default: text)
           --debug             debug logging
           --systemd-cgroup    accepted for runc compatibility
           --rootless value    accepted for runc compatibility (ignored)
           --criu value        accepted for runc compatibility (ignored)
           --help, -h          show help
           --version, -v       print the version

        kata-runtime COMMAND --help, or man kata-runtime-COMMAND, describes a command.
        """
        return s
    }

    /// A command's usage, summary and options (man kata-runtime-NAME has the details).
    static func commandHelp(_ cmd: Command) -> String {
        var s = "usage: kata-runtime \(cmd.usage)\n\n\(cmd.summary)\n"
        let flags = cmd.flags + [FlagSpec("help", "h")]
        s += "\noptions:\n"
        for f in flags {
            let names = f.names.map { ($0.count == 1 ? "-" : "--") + $0 + (f.takesValue ? " value" : "") }
            s += "   " + names.joined(separator: ", ") + "\n"
        }
        s += "\nsee man kata-runtime-\(cmd.name)"
        return s
    }
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self + " " : self + String(repeating: " ", count: n - count) }
}
