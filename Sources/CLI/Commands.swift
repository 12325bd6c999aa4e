#if canImport(Glibc)
import Glibc
#endif
import Agent
import HostRuntime
import OCI
import VMM

/// One runc-style subcommand.
struct Command: Sendable {
    let name: String
    let summary: String
    let usage: String
    let flags: [FlagSpec]
    /// Exact positional count, or a range.
    let positionals: ClosedRange<Int>
    let hidden: Bool
    let run: @Sendable (inout Context, ParsedArgs) throws -> Int32

    init(_ name: String, _ summary: String, usage: String, flags: [FlagSpec] = [], args: ClosedRange<Int>,
         hidden: Bool = false, run: @escaping @Sendable (inout Context, ParsedArgs) throws -> Int32) {
        self.name = name; self.summary = summary; self.usage = usage; self.flags = flags
        positionals = args; self.hidden = hidden; self.run = run
    }
}

enum Commands {
    static let createFlags = [
        FlagSpec("bundle", "b", value: true), FlagSpec("pid-file", value: true),
        FlagSpec("console-socket", value: true), FlagSpec("no-pivot"), FlagSpec("no-new-keyring"),
        FlagSpec("preserve-fds", value: true),
    ]

    static let all: [Command] = [
        Command("create", "create a container", usage: "create [command options] <container-id>",
                flags: createFlags, args: 1...1) { ctx, a in
            _ = try Lifecycle.create(ctx, id: a.positionals[0], bundleDir: a.value("bundle") ?? ".",
                                     pidFile: a.value("pid-file"), detach: true, consoleSocket: a.value("console-socket"),
                                     preserveFDs: try PreservedFDs.count(a.value("preserve-fds")))
            return 0
        },
        Command("start", "executes the user defined process in a created container", usage: "start <container-id>",
                args: 1...1) { ctx, a in
            try Lifecycle.start(ctx, id: a.positionals[0]); return 0
        },
        Command("run", "create and run a container", usage: "run [command options] <container-id>",
                flags: createFlags + [FlagSpec("detach", "d"), FlagSpec("keep")], args: 1...1) { ctx, a in
            return try Run.run(ctx, id: a.positionals[0], bundleDir: a.value("bundle") ?? ".", pidFile: a.value("pid-file"),
                               detach: a.flag("detach"), keep: a.flag("keep"), consoleSocket: a.value("console-socket"),
                               preserveFDs: try PreservedFDs.count(a.value("preserve-fds")))
        },
        Command("exec", "execute new process inside the container", usage: "exec [command options] <container-id> <command> [command options] || -p process.json <container-id>",
                flags: ExecCommand.flags, args: 1...Int.max) { ctx, a in
            // As runc: exec's own failures exit 255, since any other status is the process's.
            do throws(RuntimeError) { return try ExecCommand.run(ctx, a) } catch {
                throw RuntimeError("exec failed: " + error.description, exitCode: 255)
            }
        },
        Command("state", "output the state of a container", usage: "state <container-id>", args: 1...1) { ctx, a in
            print(try Lifecycle.state(ctx, id: a.positionals[0])); return 0
        },
        Command("kill", "kill sends the specified signal (default: SIGTERM) to the container's init process",
                usage: "kill [command options] <container-id> [signal]", flags: [FlagSpec("all", "a")], args: 1...2) { ctx, a in
            let name = a.positionals.count > 1 ? a.positionals[1] : "SIGTERM"
            guard let sig = Signals.parse(name) else { throw RuntimeError("unknown signal \"\(name)\"") }
            try Lifecycle.kill(ctx, id: a.positionals[0], signal: sig, all: a.flag("all")); return 0
        },
        Command("delete", "delete any resources held by the container", usage: "delete [command options] <container-id>",
                flags: [FlagSpec("force", "f")], args: 1...1) { ctx, a in
            try Lifecycle.delete(ctx, id: a.positionals[0], force: a.flag("force")); return 0
        },
        Command("list", "lists containers started by kata-runtime with the given root",
                usage: "list [command options]", flags: [FlagSpec("format", "f", value: true), FlagSpec("quiet", "q")],
                args: 0...0) { ctx, a in
            let out = try ListCommand.run(ctx, format: a.value("format") ?? "table", quiet: a.flag("quiet"))
            if !out.isEmpty { print(out) }
            return 0
        },
        Command("spec", "create a new specification file (config.json)", usage: "spec [command options]",
                flags: [FlagSpec("bundle", "b", value: true), FlagSpec("rootless")], args: 0...0) { _, a in
            let path = (a.value("bundle").map { $0 + "/" } ?? "") + "config.json"
            if access(path, F_OK) == 0 { throw RuntimeError("File \(path) exists. Remove it first") }
            let spec = DefaultSpec.make(rootless: a.flag("rootless"), uid: getuid(), gid: getgid())
            do { try Posix.writeFileAtomic(path, Array((JSONWriter.write(spec, pretty: true)).utf8), mode: 0o666 & ~0o022) }
            catch { throw RuntimeError("write \(path): \(error)") }
            return 0
        },
        Command("pause", "pause suspends all processes inside the container", usage: "pause <container-id>", args: 1...1) { ctx, a in
            try ContainerCommands.pause(ctx, id: a.positionals[0], on: true); return 0
        },
        Command("resume", "resumes all processes that have been previously paused", usage: "resume <container-id>", args: 1...1) { ctx, a in
            try ContainerCommands.pause(ctx, id: a.positionals[0], on: false); return 0
        },
        Command("ps", "ps displays the processes running inside a container",
                usage: "ps [--format table|json] <container-id> [ps options]", flags: [FlagSpec("format", "f", value: true)],
                args: 1...Int.max) { ctx, a in
            print(try ContainerCommands.ps(ctx, id: a.positionals[0], format: a.value("format") ?? "table",
                                           psArgs: Array(a.positionals.dropFirst())))
            return 0
        },
        Command("top", "display the processes of a container as seen inside its VM", usage: "top <container-id>",
                args: 1...1) { ctx, a in
            print(try ContainerCommands.top(ctx, id: a.positionals[0])); return 0
        },
        Command("events", "display container resource usage statistics (cpu, memory, pids)",
                usage: "events [--stats] [--interval 5s] <container-id>",
                flags: [FlagSpec("stats"), FlagSpec("interval", value: true)], args: 1...1) { ctx, a in
            try ContainerCommands.events(ctx, id: a.positionals[0], statsOnce: a.flag("stats"), interval: a.value("interval") ?? "5s")
        },
        Command("update", "update container resource constraints", usage: "update [command options] <container-id>",
                flags: ContainerCommands.updateFlags, args: 1...1) { ctx, a in
            try ContainerCommands.update(ctx, id: a.positionals[0], a); return 0
        },
        Command("features", "show the enabled features", usage: "features", args: 0...0) { _, _ in
            print(InfoCommands.features()); return 0
        },
        Command("env", "display the effective configuration, paths and versions", usage: "env [--json]",
                flags: [FlagSpec("json")], args: 0...0) { ctx, a in
            print(try InfoCommands.env(ctx, json: a.flag("json"))); return 0
        },
        Command("check", "check whether this host can run containers, and with which hypervisor",
                usage: "check [--json]", flags: [FlagSpec("json")], args: 0...0) { ctx, a in
            CheckCommand.run(ctx, json: a.flag("json"))
        },
        Command("vmm-probe", "(internal) boot a tiny guest through the built-in VMM and report, for benchmarks",
                usage: "vmm-probe [--text]", flags: [FlagSpec("text")], args: 0...0, hidden: true) { _, a in
            TinyGuestProbe.commandMain(a.flag("text") ? ["--text"] : [])
        },
        Command("version", "print the version", usage: "version", args: 0...0) { _, _ in
            print(Version.text); return 0
        },
        Command("keeper", "(internal) the host-side process that owns one container's VM",
                usage: "keeper [--face] [--preserve-fds N] --ready-fd N <container-id>",
                flags: [FlagSpec("ready-fd", value: true), FlagSpec("face"), FlagSpec("preserve-fds", value: true)],
                args: 1...1, hidden: true) { ctx, a in
            let config = try ctx.configuration()
            let keeper = try Keeper(store: ctx.store, id: a.positionals[0], config: config, log: ctx.logger,
                                    underFace: a.flag("face"), preserveCount: try PreservedFDs.count(a.value("preserve-fds")))
            return keeper.run(readyFD: Int32(a.value("ready-fd") ?? "") ?? -1)
        },
        Command("face", "(internal) the --pid-file process: starts the keeper, stands in the container's filesystem",
                usage: "face [--preserve-fds N] --ready-fd N <container-id>",
                flags: [FlagSpec("ready-fd", value: true), FlagSpec("preserve-fds", value: true)],
                args: 1...1, hidden: true) { ctx, a in
            let id = a.positionals[0]
            let preserved = PreservedFDs.numbers(try PreservedFDs.count(a.value("preserve-fds")))
            let keeperArgs = [Context.selfExecutable()] + ctx.globalArguments
                + ["keeper", "--face", "--preserve-fds", String(preserved.count), id, "--ready-fd"]
            return Face.run(store: ctx.store, id: id, keeperArgs: keeperArgs, preserved: preserved,
                            readyFD: Int32(a.value("ready-fd") ?? "") ?? -1, log: ctx.logger)
        },
    ]
}

enum Version {
    static let number = "0.1.0"
    static let specVersion = "1.2.0"
    static var text: String { "kata-runtime version \(number)\nspec: \(specVersion)" }
}
