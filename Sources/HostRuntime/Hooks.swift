#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import OCI

/// OCI hooks, run on the host with the state JSON on stdin. The container's namespaces live
/// in the guest, so createContainer/startContainer hooks run in the runtime's namespaces too
/// (as Kata does for OCI hooks); the moments and failure rules are the runtime spec's.
public enum Hooks {
    /// Runs each hook in order; the first failure throws, naming the hook.
    public static func run(_ hooks: [Spec.Hook], kind: String, state: JSON) throws(RuntimeError) {
        let input = Array(JSONWriter.write(state).utf8)
        for (i, h) in hooks.enumerated() {
            do { try runOne(h, input: input) } catch {
                throw RuntimeError("\(kind) hook #\(i) (\(h.path)): \(error.description)")
            }
        }
    }

    /// Runs hooks whose failure only warrants a warning (poststart, poststop).
    public static func runWarning(_ hooks: [Spec.Hook], kind: String, state: JSON, log: Logger) {
        do { try run(hooks, kind: kind, state: state) } catch { log.warning(error.description) }
    }

    static func runOne(_ h: Spec.Hook, input: [UInt8]) throws(RuntimeError) {
        let stdinPipe: (read: Int32, write: Int32), outPipe: (read: Int32, write: Int32)
        do { stdinPipe = try Posix.pipe(); outPipe = try Posix.pipe() } catch { throw RuntimeError("\(error)") }
        var spawn = Spawn(h.args.isEmpty ? [h.path] : h.args)
        spawn.path = h.path
        spawn.env = h.env
        spawn.stdio = (stdinPipe.read, outPipe.write, outPipe.write)
        spawn.setsid = true  // its own process group, so a timeout ends everything it started
        let pid = spawn.run()
        close(stdinPipe.read); close(outPipe.write)
        defer { close(outPipe.read) }
        if pid < 0 { close(stdinPipe.write); throw RuntimeError("start: \(String(cString: strerror(-pid)))") }
        try? Posix.writeAll(stdinPipe.write, input)  // a hook that ignores stdin may exit first
        close(stdinPipe.write)
        Posix.setNonblocking(outPipe.read)
        var output: [UInt8] = []
        let deadline = h.timeout.map { Posix.monotonicNanos() + UInt64($0) * 1_000_000_000 }
        while true {
            var st: Int32 = 0
            let r = waitpid(pid, &st, WNOHANG)
            var chunk: [UInt8]? = nil
            do { chunk = try Posix.readSome(outPipe.read) } catch {}
            if let c = chunk { output += c.prefix(max(0, 4096 - output.count)) }
            if r == pid {
                guard kata_wifexited(st) != 0, kata_wexitstatus(st) == 0 else {
                    let how = kata_wifexited(st) != 0 ? "exit status \(kata_wexitstatus(st))" : "killed by signal \(kata_wtermsig(st))"
                    let text = String(decoding: output, as: UTF8.self).split(separator: "\n").last.map { ": " + $0 } ?? ""
                    throw RuntimeError(how + text)
                }
                return
            }
            if let d = deadline, Posix.monotonicNanos() > d {
                kill(-pid, SIGKILL)
                waitpid(pid, &st, 0)
                throw RuntimeError("timed out after \(h.timeout!)s")
            }
            usleep(2000)
        }
    }
}
