#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import Guest
import HostRuntime
import OCI

/// create / start / kill / delete / state, shared by `run`.
enum Lifecycle {
    /// Validates the bundle, starts the keeper, waits until the container is created.
    /// Returns the keeper's PID. On failure nothing is left behind. Our fds 3, 4, ...
    /// (`preserveFDs` of them) go to the keeper, which relays them as the process's.
    static func create(_ ctx: Context, id: String, bundleDir: String, pidFile: String?, detach: Bool,
                       consoleSocket: String? = nil, preserveFDs: Int = 0) throws(RuntimeError) -> pid_t {
        try ContainerID.validate(id)
        _ = try ctx.configuration()
        let bundle = try Bundle.load(bundleDir)
        let preserved = PreservedFDs.numbers(preserveFDs)
        _ = try PreservedFDs.check(preserved, own: [ctx.logger.logFD])
        warnUnknownCapabilities(ctx, bundle.spec.process?.capabilities)
        let terminal = bundle.spec.process?.terminal ?? false
        if consoleSocket != nil && !terminal { throw RuntimeError("cannot use console socket if runc will not allocate tty") }
        if consoleSocket == nil && terminal && detach {
            throw RuntimeError("cannot allocate tty if runc will detach without setting console socket")
        }
        let store = ctx.store
        _ = try store.create(id)
        do throws(RuntimeError) {
            try store.save(ContainerState(id: id, bundle: bundle.path, rootfs: bundle.rootfs, annotations: bundle.spec.annotations))
            let pipe: (read: Int32, write: Int32)
            do { pipe = try Posix.pipe() } catch { throw RuntimeError("\(error)") }
            // The --pid-file process is the face, which starts the keeper (see Face).
            let args = [Context.selfExecutable()] + ctx.globalArguments
                + ["face", "--preserve-fds", String(preserveFDs), "--ready-fd", String(pipe.write), id]
            // With a console socket the keeper's stdio is a host pty whose master the caller gets.
            var stdio: (Int32, Int32, Int32) = (0, 1, 2)
            if let sock = consoleSocket {
                let pair = try HostTerminal.openPair()
                if let cs = bundle.spec.process?.consoleSize { HostTerminal.setSize(pair.master, rows: cs.height, cols: cs.width) }
                do { try HostTerminal.sendToConsoleSocket(sock, master: pair.master) }
                catch { close(pair.master); close(pair.slave); close(pipe.read); close(pipe.write); throw error }
                close(pair.master)
                stdio = (pair.slave, pair.slave, pair.slave)
            }
            let pid = spawnKeeper(args, keep: [pipe.write] + preserved, detach: detach, stdio: stdio)
            if stdio.0 != 0 { close(stdio.0) }
            close(pipe.write)
            defer { close(pipe.read) }
            if pid < 0 { throw RuntimeError("start keeper: \(String(cString: strerror(-pid)))") }
            let reply = String(decoding: (try? Posix.readToEnd(pipe.read)) ?? [], as: UTF8.self).trimmingTrailingNewlines
            if reply != "ok" {
                var st: Int32 = 0
                while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
                throw RuntimeError(reply.hasPrefix("error ") ? String(reply.dropFirst(6)) : "keeper exited during create")
            }
            if let pf = pidFile {
                do { try Posix.writeFileAtomic(pf, Array(String(pid).utf8)) }
                catch { Glibc.kill(pid, SIGKILL); throw RuntimeError("write pid file \(pf): \(error)") }
            }
            return pid
        } catch {
            store.remove(id)
            throw error
        }
    }

    /// runc's warning (and behaviour: the guest leaves them out) for capability names it does not know.
    static func warnUnknownCapabilities(_ ctx: Context, _ caps: OCI.Process.Capabilities?) {
        let unknown = CapabilityNames.unknown(in: caps)
        if !unknown.isEmpty {
            ctx.logger.warning("ignoring unknown or unavailable capabilities: [\(unknown.joined(separator: " "))]")
        }
    }

    static func spawnKeeper(_ args: [String], keep: [Int32], detach: Bool, stdio: (Int32, Int32, Int32)) -> pid_t {
        var s = Spawn(args)
        s.stdio = stdio
        s.keep = keep
        s.setsid = detach
        return s.run()
    }

    static func start(_ ctx: Context, id: String) throws(RuntimeError) {
        let store = ctx.store
        let st = try store.load(id)
        let lock = try store.lock(id)
        defer { withExtendedLifetime(lock) {} }
        switch store.currentStatus(st) {
        case .created: _ = try ControlSocket.request(stateDir: store.directory(id), "start")
        case .stopped: throw RuntimeError("cannot start a container that has stopped")
        case .running, .paused: throw RuntimeError("cannot start an already running container")
        case .creating: throw RuntimeError("container \(id) is still being created")
        }
    }

    static func kill(_ ctx: Context, id: String, signal: Int32, all: Bool) throws(RuntimeError) {
        let store = ctx.store
        let st = try store.load(id)
        switch store.currentStatus(st) {
        case .stopped: throw RuntimeError("container not running")
        case .creating: throw RuntimeError("container \(id) is still being created")
        default: _ = try ControlSocket.request(stateDir: store.directory(id), "kill \(signal) \(all ? 1 : 0)")
        }
    }

    static func delete(_ ctx: Context, id: String, force: Bool) throws(RuntimeError) {
        let store = ctx.store
        let st: ContainerState
        do { st = try store.load(id) } catch {
            // runc: deleting a missing container with --force succeeds.
            if force && (try? ContainerID.validate(id)) != nil { return }
            throw error
        }
        let lock = try store.lock(id)
        defer { withExtendedLifetime(lock) {} }
        let status = store.currentStatus(st)
        switch status {
        case .running, .paused:
            guard force else { throw RuntimeError("cannot delete container \(id) that is not stopped: \(status.rawValue)") }
            stopKeeper(store, st)
        case .created, .creating:
            stopKeeper(store, st)
        case .stopped:
            waitGone(st, seconds: 10)
        }
        let spec = try? Bundle.load(st.bundle, requireProcess: false).spec
        NetworkPlumbing.cleanUp(stateDir: store.directory(id), namespacePath: spec.flatMap(NetworkNamespace.path))
        store.remove(id)
        // poststop: after the container is gone, before delete returns; failures only warn.
        if let spec, !spec.hooks.poststop.isEmpty {
            Hooks.runWarning(spec.hooks.poststop, kind: "poststop", state: st.runcJSON(status: .stopped), log: ctx.logger)
        }
    }

    /// SIGKILLs the container through its keeper and waits for the keeper to finish its teardown.
    static func stopKeeper(_ store: StateStore, _ st: ContainerState) {
        _ = try? ControlSocket.request(stateDir: store.directory(st.id), "kill \(SIGKILL) 1", timeoutMs: 5000)
        if !waitGone(st, seconds: 10), st.pid > 0, ProcessInfo.isAlive(st.pid, startTime: st.pidStartTime) {
            Glibc.kill(st.pid, SIGKILL)  // its VM processes die with it (PDEATHSIG)
            waitGone(st, seconds: 5)
        }
    }

    @discardableResult
    static func waitGone(_ st: ContainerState, seconds: Int) -> Bool {
        guard st.pid > 0 else { return true }
        for _ in 0..<(seconds * 200) {
            if !ProcessInfo.isAlive(st.pid, startTime: st.pidStartTime) { return true }
            usleep(5000)
        }
        return false
    }

    static func state(_ ctx: Context, id: String) throws(RuntimeError) -> String {
        let store = ctx.store
        let st = try store.load(id)
        return JSONWriter.write(st.runcJSON(status: store.currentStatus(st)), pretty: true)
    }
}

