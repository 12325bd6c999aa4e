#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import OCI
import SyscallFilter

/// The guest side of the agent protocol: one poll loop over the agent port, every relayed
/// process's stdio and SIGCHLD. Output is read only while the host has granted credit, so
/// a slow host reader stalls that process, not the guest.
final class AgentServer {
    let channel: Channel
    var window = SendWindow()
    var container: ContainerProcess?
    var spec: Spec?
    var seccomp: SeccompProgram?  // the container's, compiled once at create
    var cgroup: ContainerCgroup?
    var processes: [UInt32: GuestProcess] = [:]
    /// Relays of preserved fds and of connections to preserved listening sockets, by (stream, fd).
    var ends: [UInt64: StreamEnd] = [:]
    let sigfd: Int32

    init(channel: Channel) {
        self.channel = channel
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGCHLD)
        sigprocmask(SIG_BLOCK, &set, nil)
        sigfd = kata_signalfd(-1, &set)
    }

    func run() -> Never {
        channel.send(.text(.ready, GuestInit.kernelRelease()))
        while true {
            var fds: [pollfd] = [
                pollfd(fd: channel.fd, events: Int16(POLLIN) | (channel.wantsWrite ? Int16(POLLOUT) : 0), revents: 0),
                pollfd(fd: sigfd, events: Int16(POLLIN), revents: 0),
            ]
            var owners: [(GuestProcess, UInt8)] = []  // fd 0 = stdin writable, 1/2 = output readable
            for p in processes.values where p.started {
                if p.stdout >= 0 && window.chunk(p.stream, fd: 1) > 0 { fds.append(pollfd(fd: p.stdout, events: Int16(POLLIN), revents: 0)); owners.append((p, 1)) }
                if p.stderr >= 0 && window.chunk(p.stream, fd: 2) > 0 { fds.append(pollfd(fd: p.stderr, events: Int16(POLLIN), revents: 0)); owners.append((p, 2)) }
                if p.stdin >= 0 && !p.stdinQueue.isEmpty { fds.append(pollfd(fd: p.stdin, events: Int16(POLLOUT), revents: 0)); owners.append((p, 0)) }
            }
            let endBase = fds.count
            var polled: [StreamEnd] = []
            for e in ends.values {
                let ev = e.pollEvents(window)
                if ev != 0 { fds.append(pollfd(fd: e.fd, events: ev, revents: 0)); polled.append(e) }
            }
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0 && errno != EINTR { GuestInit.fatal("poll: \(String(cString: strerror(errno)))") }
            channel.flush()
            if fds[0].revents != 0 { handleChannel() }
            if fds[1].revents != 0 { reap() }
            for (i, (p, fd)) in owners.enumerated() where fds[i + 2].revents != 0 {
                if fd == 0 { flushStdin(p) } else { pumpOutput(p, fd: fd) }
            }
            for (i, e) in polled.enumerated() where fds[endBase + i].revents != 0 {
                e.service(fds[endBase + i].revents, channel: channel, window: &window)
                forgetIfFinished(e)
            }
            for p in Array(processes.values) { finishIfDone(p) }
        }
    }

    func handleChannel() {
        let frames: [Frame]
        do { frames = try channel.receive() } catch { GuestInit.fatal("agent protocol: \(error)") }
        for f in frames { handle(f) }
        if channel.isClosed { GuestInit.fatal("agent channel closed by the host") }
    }

    func handle(_ f: Frame) {
        if f.kind == .data || f.kind == .eof || f.kind == .shut, let e = ends[StreamKey.of(f.stream, f.fd)] {
            e.receive(f, channel: channel)
            forgetIfFinished(e)
            return
        }
        switch f.kind {
        case .request:
            guard let (id, req) = try? f.asRequest() else { GuestInit.log("bad request"); return }
            GuestInit.trace("request \(id): \(req.name)")
            var body: [UInt8] = []
            let err = perform(req, body: &body)
            GuestInit.trace("request \(id) done: \(err ?? "ok")")
            channel.send(.response(id, error: err, body: body))
        case .data:
            guard let p = processes[f.stream], f.fd == 0, p.stdin >= 0 else { return }
            p.stdinQueue.append(contentsOf: f.body)
            flushStdin(p)
        case .eof:
            guard let p = processes[f.stream], f.fd == 0 else { return }
            p.stdinEOF = true
            flushStdin(p)
        case .credit:
            if let (fd, n) = try? f.asCredit() { window.grant(f.stream, fd: fd, Int(n)) }
        case .shut:
            break  // an end that already finished
        default:
            GuestInit.log("unexpected frame \(f.kind)")
        }
    }

    /// Runs a request; nil on success, the error text otherwise. Data for the host goes in `body`.
    func perform(_ req: Request, body: inout [UInt8]) -> String? {
        switch req {
        case .createContainer(let c):
            guard container == nil else { return "a container already exists in this VM" }
            do {
                let spec = try SpecParser.parse(c.config)
                GuestInit.trace("config parsed")
                let compiled = c.seccomp.isEmpty ? nil : try SeccompProgram(encoded: c.seccomp)
                let setup = try ContainerSetup(spec: spec, rootfs: c.rootfs, binds: c.binds, compiled: compiled,
                                               network: c.network, vmOwnsNamespaces: true)
                let group = try ContainerCgroup.create(id: c.id)
                if let r = spec.linux.resources { try group.apply(r) }
                cgroup = group
                let objects = try PreservedObjects.make(c.preserved)
                let initProcess: ContainerProcess
                do { initProcess = try ContainerProcess(setup: setup, stream: c.stream, cgroup: group, preserved: objects) }
                catch { objects.closeAll(); throw error }
                container = initProcess
                self.spec = spec
                seccomp = setup.seccomp
                processes[c.stream] = initProcess.process
                adopt(objects, for: initProcess.process, held: true)
                return nil
            } catch let e as SpecError { return e.description }
            catch { return "\(error)" }
        case .startContainer:
            guard let c = container else { return "no container to start" }
            do { try c.start() } catch { return error.description }
            for e in c.process.ends { e.held = false }
            return nil
        case .exec(let stream, let json, let preserved):
            guard let c = container, let spec else { return "no container" }
            guard c.process.waitStatus == nil else { return "cannot exec in a stopped container" }
            guard processes[stream] == nil else { return "stream \(stream) is in use" }
            do {
                let process = try SpecParser.parseProcess(json)
                let objects = try PreservedObjects.make(preserved)
                let p: GuestProcess
                do {
                    p = try ExecProcess.spawn(initPID: c.process.pid, spec: spec, process: process, seccomp: seccomp,
                                              stream: stream, cgroup: cgroup, preserved: objects)
                } catch { objects.closeAll(); throw error }
                processes[stream] = p
                adopt(objects, for: p, held: false)
                return nil
            } catch let e as SpecError { return e.description }
            catch { return "\(error)" }
        case .connect(let stream, let fd, let conn):
            return connect(stream: stream, fd: fd, conn: conn)
        case .signal(let stream, let sig, let all):
            guard let p = processes[stream] else { return "no such process" }
            if p.waitStatus != nil { return "process has already exited" }
            if all { signalAll(sig) } else if kill(p.pid, sig) != 0 { return "kill: \(String(cString: strerror(errno)))" }
            return nil
        case .resize(let stream, let rows, let cols):
            guard let p = processes[stream], p.terminal >= 0 else { return "process has no terminal" }
            Pty.resize(p.terminal, rows: rows, cols: cols)
            return nil
        case .pause(let on):
            guard let g = cgroup else { return "no container" }
            do { try g.freeze(on); return nil } catch { return error.description }
        case .stats:
            guard let g = cgroup else { return "no container" }
            body = Array(JSONWriter.write(g.stats()).utf8)
            return nil
        case .update(let bytes):
            guard let g = cgroup else { return "no container" }
            do {
                let r = try JSONParser.parse(bytes)
                try g.apply(r)
                return nil
            } catch let e as SetupError { return e.description }
            catch { return "resources: \(error)" }
        case .processes:
            guard let g = cgroup else { return "no container" }
            body = Array(JSONWriter.write(g.processTable()).utf8)
            return nil
        case .shutdown:
            sync()
            _ = kata_reboot(0x0123_4567)  // RB_AUTOBOOT ends the VM (see GuestInit.fatal)
            return "poweroff failed"
        }
    }

    /// The process holds its preserved fds now; the agent relays the other ends.
    func adopt(_ objects: PreservedObjects, for p: GuestProcess, held: Bool) {
        objects.closeContainerEnds()
        p.ends = objects.ends(stream: p.stream, held: held)
        p.listeners = objects.listeners
        for e in p.ends { ends[StreamKey.of(e.stream, e.number)] = e }
    }

    /// A connection the host accepted for a preserved listening socket: connect to the
    /// process's listening socket here and relay the two on stream `conn`.
    func connect(stream: UInt32, fd: UInt8, conn: UInt32) -> String? {
        guard let addr = processes[stream]?.listeners[fd] else { return "fd \(fd) of stream \(stream) is not a listening socket" }
        guard ends[StreamKey.of(conn, 0)] == nil, processes[conn] == nil else { return "stream \(conn) is in use" }
        let sock = addr.withUnsafeBytes { kata_connect_nonblocking($0.baseAddress, UInt32($0.count)) }
        if sock < 0 { return "connect to preserved fd \(fd): \(String(cString: strerror(errno)))" }
        ends[StreamKey.of(conn, 0)] = StreamEnd(stream: conn, number: 0, fd: sock, sends: true, receives: true,
                                                access: .socket, ownsSocket: true)
        return nil
    }

    func forgetIfFinished(_ e: StreamEnd) {
        guard e.isFinished else { return }
        ends[StreamKey.of(e.stream, e.number)] = nil
        if processes[e.stream] == nil { window.forget(e.stream) }  // a connection's stream
    }

    /// Every process in the container's pid namespace (or every process but init without one).
    func signalAll(_ sig: Int32) {
        guard let c = container else { return }
        let target = nsLink(c.process.pid)
        for name in Posix.listDirectory("/proc") {
            guard let pid = pid_t(name), pid != 1 else { continue }
            if target == nil || nsLink(pid) == target { kill(pid, sig) }
        }
    }

    func nsLink(_ pid: pid_t) -> String? {
        var buf = [CChar](repeating: 0, count: 128)
        let n = readlink("/proc/\(pid)/ns/pid", &buf, 127)
        return n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }

    func reap() {
        var info = signalfd_siginfo()
        while read(sigfd, &info, MemoryLayout<signalfd_siginfo>.size) > 0 {}
        while true {
            var st: Int32 = 0
            let pid = waitpid(-1, &st, WNOHANG)
            if pid <= 0 { break }
            for p in processes.values where p.pid == pid {
                p.waitStatus = st
                GuestInit.trace("process on stream \(p.stream) exited, status \(st)")
            }
        }
    }

    /// Reads one chunk of output; true when the source reached its end.
    @discardableResult
    func pumpOutput(_ p: GuestProcess, fd: UInt8) -> Bool {
        let src = fd == 1 ? p.stdout : p.stderr
        let max = window.chunk(p.stream, fd: fd)
        guard src >= 0, max > 0 else { return false }
        let chunk: [UInt8]?
        do { chunk = try Posix.readSome(src, max: max) } catch { chunk = [] }  // EIO: pty slave closed
        guard let data = chunk else { return false }
        if data.isEmpty {
            if fd == 1 {
                if p.terminal == p.stdout { p.terminal = -1 }
                close(src); p.stdout = -1
            } else { close(src); p.stderr = -1 }
            channel.send(.eof(p.stream, fd: fd))
            return true
        }
        window.spend(p.stream, fd: fd, data.count)
        channel.send(.data(p.stream, fd: fd, data[...]))
        return false
    }

    func flushStdin(_ p: GuestProcess) {
        guard p.stdin >= 0 else { return }
        while !p.stdinQueue.isEmpty {
            let n = p.stdinQueue.withUnsafeBytes { write(p.stdin, $0.baseAddress, $0.count) }
            if n > 0 {
                p.stdinQueue.removeFirst(n)
                channel.send(.credit(p.stream, fd: 0, UInt32(n)))
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && errno == EAGAIN {
                return
            } else {
                // The reader went away (EPIPE): drop input, as a pipe would.
                p.stdinQueue.removeAll(); p.stdinEOF = true
            }
        }
        // A terminal has no end of file; the shell reading it sees ^D as the host sends it.
        if p.stdinEOF && p.terminal < 0 { close(p.stdin); p.stdin = -1 }
    }

    /// After a process exits, send what is left of its output, then its status. Output held
    /// open by a leftover grandchild does not delay the status forever.
    func finishIfDone(_ p: GuestProcess) {
        guard let st = p.waitStatus, !p.exitSent else { return }
        // Preserved fds first: their last bytes, then their ends, all before the status.
        var endsDone = true
        for e in p.ends where !e.finishForExit(channel, window: &window) { endsDone = false }
        guard endsDone else { return }
        for fd: UInt8 in [1, 2] {
            while (fd == 1 ? p.stdout : p.stderr) >= 0 && window.chunk(p.stream, fd: fd) > 0 {
                let src = fd == 1 ? p.stdout : p.stderr
                let r: [UInt8]?
                do { r = try Posix.readSome(src, max: window.chunk(p.stream, fd: fd)) } catch { r = [] }
                if let data = r, !data.isEmpty {
                    window.spend(p.stream, fd: fd, data.count)
                    channel.send(.data(p.stream, fd: fd, data[...]))
                    continue
                }
                if fd == 1 { if p.terminal == p.stdout { p.terminal = -1 }; p.stdout = -1 } else { p.stderr = -1 }
                close(src)
                channel.send(.eof(p.stream, fd: fd))
            }
        }
        if p.stdout < 0 && p.stderr < 0 {
            p.exitSent = true
            p.closeAll()
            for e in p.ends { ends[StreamKey.of(e.stream, e.number)] = nil }
            channel.send(.exit(p.stream, status: st))
            window.forget(p.stream)
            // The init's entry stays: its pid namespace and status outlive it.
            if container?.process !== p { processes[p.stream] = nil }
        }
    }
}
