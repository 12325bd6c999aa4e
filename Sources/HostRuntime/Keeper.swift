#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import Hypervisor
import Netlink
import OCI
import SyscallFilter
import VMM

/// The long-lived host process of one container. It owns the VM, relays the container
/// process's stdio between its own fds 0/1/2 and the guest, answers the CLI on its
/// control socket, forwards the signals it receives, and exits with the container's
/// exit status. Its PID is what --pid-file gets, so docker's shim and conmon can reap it.
public final class Keeper {
    let store: StateStore
    let config: Configuration
    let log: Logger
    var state: ContainerState
    let dir: String
    var vm: VirtualMachine?
    /// Taps and redirects connecting the container's interfaces to the VM.
    var plumbing: NetworkPlumbing?
    var channel: Channel!
    /// Credit for what we send: stdin and preserved fds, per (stream, fd).
    var window = SendWindow()
    var nextRequest: UInt32 = 1
    var pending: [UInt32: (fd: Int32, op: String)] = [:]
    var controls: [Int32] = []
    var ctlListen: Int32 = -1
    var sigfd: Int32 = -1
    var relays: [UInt32: Relay] = [:]
    /// Preserved fds' relays and accepted connections' relays, by (stream, fd).
    var ends: [UInt64: StreamEnd] = [:]
    /// The listener each relayed connection came from, by its stream.
    var connectionSources: [UInt32: PreservedListener] = [:]
    /// How many of our fds 3, 4, ... are the container process's preserved fds (create --preserve-fds).
    let preserveCount: Int
    var initEnds: [StreamEnd] = []
    var initListeners: [PreservedListener] = []
    /// config.json as read at boot: hooks and the init's terminal flag come from it.
    var spec: Spec?
    var hooks: Spec.Hooks { spec?.hooks ?? Spec.Hooks() }
    var statusBeforePause = ContainerState.Status.running
    var nextStream: UInt32 = 2
    var exitCode: Int32?
    static let stream: UInt32 = 1
    static let forwarded: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGALRM]

    /// The --pid-file process: our parent face, or ourselves when started without one.
    let containerPID: Int32

    public init(store: StateStore, id: String, config: Configuration, log: Logger, underFace: Bool = false,
                preserveCount: Int = 0) throws(RuntimeError) {
        self.store = store; self.config = config; self.log = log; self.preserveCount = preserveCount
        containerPID = underFace ? getppid() : getpid()
        state = try store.load(id)
        dir = store.directory(id)
    }

    /// Boots, creates the container, reports to the CLI over `readyFD`, then serves until
    /// the container exits. Returns the exit status for the keeper to exit with.
    public func run(readyFD: Int32) -> Int32 {
        if readyFD >= 0 { Posix.setCloexec(readyFD) }  // the VM's processes must not hold it open
        state.pid = containerPID
        state.pidStartTime = ProcessInfo.stat(containerPID)?.startTime ?? 0
        setupSignals()
        do {
            try? store.save(state)
            let preserved = try PreservedFDs.adopt(PreservedFDs.numbers(preserveCount), stream: Self.stream, held: true)
            initEnds = preserved.ends
            initListeners = preserved.listeners
            try boot(preserved: preserved.specs)
            state.status = .created
            try store.save(state)
        } catch {
            log.error(error.description)
            if log.debugEnabled, let console = try? Posix.readFile(dir + "/console.log") {
                log.debug("guest console:\n" + String(decoding: console, as: UTF8.self))
            }
            report(readyFD, "error " + error.description)
            for e in initEnds { e.close() }
            for l in initListeners { l.close() }
            teardown()
            return 1
        }
        report(readyFD, "ok")
        serve()
        return finish()
    }

    func report(_ fd: Int32, _ line: String) {
        guard fd >= 0 else { return }
        try? Posix.writeAll(fd, Array((line + "\n").utf8))
        close(fd)
    }

    func setupSignals() {
        signal(SIGPIPE, SIG_IGN)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGCHLD)
        for s in Self.forwarded { sigaddset(&set, s) }
        sigprocmask(SIG_BLOCK, &set, nil)
        sigfd = kata_signalfd(-1, &set)
    }

    func boot(preserved: [PreservedFD]) throws(RuntimeError) {
        if chdir(dir) != 0 { throw RuntimeError("chdir \(dir): \(String(cString: strerror(errno)))") }
        let bundle = try Bundle.load(state.bundle)
        spec = bundle.spec
        let shared = dir + "/shared"
        let (hostShares, guestBinds) = try bundle.shares(sharedDir: shared, guestDir: "/run/kata/shared")
        for s in hostShares { try makeMountPoint(s.target, like: s.source) }
        // prestart/createRuntime run before the VM starts: they may set up the network (docker's
        // libnetwork-setkey moves the veth into our namespace), and QEMU needs its network
        // devices when it starts (microvm has no hotplug).
        let creating = state.runcJSON(status: .creating)
        try Hooks.run(hooks.prestart, kind: "prestart", state: creating)
        try Hooks.run(hooks.createRuntime, kind: "createRuntime", state: creating)
        let network = try connectNetwork()
        let vm = try makeVM(shared: shared, binds: hostShares,
                            netDevices: plumbing?.taps.map { NetDevice(tapFD: $0.fd, mac: $0.mac, mtu: $0.mtu) } ?? [])
        self.vm = vm
        let t0 = Posix.monotonicNanos()
        let fd: Int32
        do { fd = try vm.start() } catch { throw RuntimeError("start VM: \(error.description)") }
        log.debug("agent channel connected after \((Posix.monotonicNanos() - t0) / 1_000_000) ms")
        channel = Channel(fd: fd)
        // Sent before the guest is up: QEMU holds the bytes until the guest opens its port,
        // which saves a round trip on every create.
        let req = CreateContainer(id: state.id, config: bundle.configBytes, rootfs: "/run/kata/shared/rootfs",
                                  binds: guestBinds, stream: Self.stream, preserved: preserved,
                                  seccomp: compileSeccomp(bundle.spec), network: network)
        channel.send(.request(0, .createContainer(req)))
        let ready = try waitFrame(.ready, what: "guest agent")
        log.debug("guest agent ready after \((Posix.monotonicNanos() - t0) / 1_000_000) ms, kernel \((try? ready.asText()) ?? "?")")
        let resp = try waitFrame(.response, what: "create")
        if let err = (try? resp.asResponse())?.1 { throw RuntimeError(err) }
        log.debug("container created after \((Posix.monotonicNanos() - t0) / 1_000_000) ms")
        try Hooks.run(hooks.createContainer, kind: "createContainer", state: creating)
        ctlListen = kata_unix_listen(ControlSocket.name, 16)
        if ctlListen < 0 { throw RuntimeError("listen on control socket: \(String(cString: strerror(errno)))") }
    }

    /// linux.seccomp compiled here while the VM boots: libseccomp is slow under TCG (about
    /// half a second in the guest for docker's profile, ~50 ms natively). If the host cannot
    /// (its kernel lacks something the profile asks for), the guest compiles it instead.
    func compileSeccomp(_ spec: Spec) -> [UInt8] {
        guard let s = spec.linux.seccomp else { return [] }
        let t0 = Posix.monotonicNanos()
        do {
            let program = try SeccompFilter.compile(s)
            log.debug("seccomp filter compiled on the host in \((Posix.monotonicNanos() - t0) / 1_000_000) ms: " +
                      "\(program.instructions.count) instructions, unknown syscalls skipped: \(program.skipped)")
            return program.encoded
        } catch {
            log.debug("seccomp filter left to the guest: \(error)")
            return []
        }
    }

    /// Finds the interfaces of our network namespace (the container's) and connects each to a
    /// tap for the VM. Returns what the guest needs to configure them.
    func connectNetwork() throws(RuntimeError) -> NetworkConfig {
        let t0 = Posix.monotonicNanos()
        let socket: RouteSocket
        let scan: NetworkScan
        do { socket = try RouteSocket(); scan = try NetworkScan.read(socket) } catch { throw RuntimeError("network: \(error)") }
        if let tap = scan.sharedTap {
            // Two VMs cannot share one namespace's interfaces (Kata runs such containers in one VM, a pod).
            throw RuntimeError("network: the network namespace is already connected to another container's VM (\(tap) exists); "
                               + "kata-runtime cannot share a network namespace between containers")
        }
        for w in scan.skipped { log.warning(w) }
        guard !scan.links.isEmpty else { return NetworkConfig() }
        let names = scan.links.map(\.name).joined(separator: ", ")
        let p = NetworkPlumbing(socket: socket, stateDir: dir)
        plumbing = p
        try p.connect(scan.links)
        log.debug("network: \(names) connected to \(p.taps.map(\.name).joined(separator: ", ")) in \((Posix.monotonicNanos() - t0) / 1_000) us; "
                  + "addresses \(scan.config.interfaces.flatMap(\.addresses)), routes \(scan.config.routes)")
        return scan.config
    }

    func makeVM(shared: String, binds: [(source: String, target: String)], netDevices: [NetDevice]) throws(RuntimeError) -> VirtualMachine {
        let probe = Accelerator.probe()
        // auto: the built-in VMM on VT-x/AMD-V with its KVM module, QEMU otherwise (PVM included).
        // Both take the taps as virtio-net devices.
        let choice = BackendChoice.decide(configured: config.hypervisor, host: probe)
        var accel = config.accel
        if accel == "auto" { accel = probe.usable ? "kvm" : "tcg" }
        var vmc = VMConfig(kernel: config.kernel, initrd: config.initrd, vcpus: config.vcpus, memoryMiB: config.memoryMiB,
                           kernelParams: config.kernelParams.split(separator: " ").map(String.init),
                           stateDir: dir, sharedDir: shared, binds: binds,
                           bootTimeoutSeconds: config.bootTimeout, debug: log.debugEnabled)
        vmc.netDevices = netDevices
        if choice.backend == .builtin {
            guard probe.kvmDevice else { throw RuntimeError("hypervisor builtin: /dev/kvm is missing or not accessible") }
            guard !probe.pvm else {
                throw RuntimeError("hypervisor builtin: \(probe.reason), so a Linux guest cannot boot; use qemu (see kata-runtime check)")
            }
            log.debug("hypervisor: built-in VMM (\(choice.reason))")
            return BuiltinVM(config: vmc)
        }
        log.debug("hypervisor: qemu, accelerator \(accel) (\(choice.reason))")
        return QEMU(config: vmc, qemuPath: config.qemuPath, virtiofsdPath: config.virtiofsdPath, accel: accel)
    }

    func makeMountPoint(_ target: String, like source: String) throws(RuntimeError) {
        do {
            if Posix.isDirectory(source) { try Posix.mkdirAll(target) } else {
                try Posix.mkdirAll(String(target[..<target.lastIndex(of: "/")!]))
                let fd = kata_open_mode(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
                if fd < 0 { throw SysError("create \(target)") }
                close(fd)
            }
        } catch { throw RuntimeError("prepare shared directory: \(error)") }
    }

    /// Waits for a frame of `kind` during boot, failing if the VM dies first.
    func waitFrame(_ kind: Frame.Kind, what: String) throws(RuntimeError) -> Frame {
        let deadline = Posix.monotonicNanos() + UInt64(config.bootTimeout) * 1_000_000_000
        while Posix.monotonicNanos() < deadline {
            let f: Frame?
            do { f = try channel.waitFrame(timeoutMs: 200) } catch { throw RuntimeError("agent protocol: \(error)") }
            if let f {
                if f.kind == kind { return f }
                if f.kind == .log { log.debug("guest: \((try? f.asText()) ?? "")") }
                continue
            }
            if channel.isClosed { break }
        }
        let console = vm?.consoleTail() ?? ""
        throw RuntimeError("no \(what) reply from the VM" + (console.isEmpty ? "" : "; guest console: " + console))
    }

    // MARK: serving

    func serve() {
        let initTTY = spec?.process?.terminal ?? false
        let initRelay = Relay(stream: Self.stream, stdin: 0, stdout: 1, stderr: 2, waiter: -1,
                              started: false, tty: initTTY, ownsFDs: false)
        adopt(initEnds, initListeners, into: initRelay)
        relays[Self.stream] = initRelay
        while exitCode == nil {
            var fds: [pollfd] = [
                pollfd(fd: channel.fd, events: Int16(POLLIN) | (channel.wantsWrite ? Int16(POLLOUT) : 0), revents: 0),
                pollfd(fd: sigfd, events: Int16(POLLIN), revents: 0),
                pollfd(fd: ctlListen, events: Int16(POLLIN), revents: 0),
            ]
            var inputs: [Relay] = []
            for r in relays.values where r.started && r.stdinOpen && window.chunk(r.stream, fd: 0) > 0 {
                fds.append(pollfd(fd: r.stdin, events: Int16(POLLIN), revents: 0))
                inputs.append(r)
            }
            var waiters: [Relay] = []
            for r in relays.values where r.waiter >= 0 && !r.waiterClosed {
                fds.append(pollfd(fd: r.waiter, events: Int16(POLLIN), revents: 0))
                waiters.append(r)
            }
            let ctlBase = fds.count
            for c in controls { fds.append(pollfd(fd: c, events: Int16(POLLIN), revents: 0)) }
            let endBase = fds.count
            var polled: [StreamEnd] = []
            for e in ends.values {
                let ev = e.pollEvents(window)
                if ev != 0 { fds.append(pollfd(fd: e.fd, events: ev, revents: 0)); polled.append(e) }
            }
            let listenBase = fds.count
            let listening = relays.values.flatMap { $0.listeners }.filter { $0.wantsAccept }
            for l in listening { fds.append(pollfd(fd: l.fd, events: Int16(POLLIN), revents: 0)) }
            // Terminals are polled for size changes: a pty we only hold sends no SIGWINCH.
            let timeout: Int32 = relays.values.contains { $0.terminal >= 0 } ? 200 : -1
            if poll(&fds, nfds_t(fds.count), timeout) < 0 && errno != EINTR { log.error("poll: \(SysError("poll"))"); break }
            channel.flush()
            if fds[0].revents != 0 { handleChannel() }
            if fds[1].revents != 0 { handleSignals() }
            if fds[2].revents != 0 { acceptControl() }
            for (i, r) in inputs.enumerated() where fds[3 + i].revents != 0 { pumpStdin(r) }
            for (i, r) in waiters.enumerated() where fds[3 + inputs.count + i].revents != 0 { handleWaiter(r) }
            for p in fds[ctlBase..<endBase] where p.revents != 0 { handleControl(p.fd) }
            for (i, e) in polled.enumerated() where fds[endBase + i].revents != 0 {
                e.service(fds[endBase + i].revents, channel: channel, window: &window)
                forgetIfFinished(e)
            }
            for (i, l) in listening.enumerated() where fds[listenBase + i].revents != 0 { accept(l) }
            for r in Array(relays.values) where r.exitCode != nil { completeIfDone(r) }
            for r in relays.values where r.started {
                if let s = r.sizeChange() { send(.resize(stream: r.stream, rows: s.rows, cols: s.cols), replyTo: -1, op: "resize") }
            }
        }
    }

    func handleChannel() {
        let frames: [Frame]
        do { frames = try channel.receive() } catch {
            log.error("agent protocol: \(error)"); exitCode = 255; return
        }
        for f in frames { handle(f) }
        if channel.isClosed && exitCode == nil {
            log.error("the VM closed the agent channel; guest console: \(vm?.consoleTail() ?? "")")
            exitCode = 255
        }
    }

    func handle(_ f: Frame) {
        if f.kind == .data || f.kind == .eof || f.kind == .shut, let e = ends[StreamKey.of(f.stream, f.fd)] {
            e.receive(f, channel: channel)
            forgetIfFinished(e)
            return
        }
        switch f.kind {
        case .data:
            // Late bytes for a preserved fd already closed here are dropped, never sent to stdout.
            guard let r = relays[f.stream], f.fd == 1 || f.fd == 2 else { return }
            try? Posix.writeAll(f.fd == 2 ? r.stderr : r.stdout, f.body)  // a reader that went away loses output, not the container
            channel.send(.credit(f.stream, fd: f.fd, UInt32(f.body.count)))
        case .credit:
            if let (fd, n) = try? f.asCredit() { window.grant(f.stream, fd: fd, Int(n)) }
        case .exit:
            let code = Posix.exitCode(fromWaitStatus: (try? f.asExit()) ?? 255 << 8)
            guard let r = relays[f.stream] else { return }
            // Its input is no longer read; its output's last bytes (sent before the status)
            // are written out before the status is passed on.
            r.exitCode = code
            for e in r.ends { e.stopSending(); forgetIfFinished(e) }
            for l in r.listeners { l.close() }
            completeIfDone(r)
        case .response:
            guard let (id, err, body) = try? f.asResponseWithBody(), let p = pending.removeValue(forKey: id) else { return }
            if p.op.hasPrefix("connect ") {
                if let err, let conn = UInt32(p.op.dropFirst(8)), let e = ends[StreamKey.of(conn, 0)] {
                    log.debug("preserved listening socket: \(err)")
                    e.close()
                    forgetIfFinished(e)
                }
                return
            }
            if err == nil && p.op == "start" {
                relays[Self.stream]?.started = true
                for e in relays[Self.stream]?.ends ?? [] { e.held = false }
                for l in relays[Self.stream]?.listeners ?? [] { l.held = false }
                state.status = .running
                try? store.save(state)
                Hooks.runWarning(hooks.poststart, kind: "poststart", state: state.runcJSON(status: .running), log: log)
            }
            if err == nil && (p.op == "pause" || p.op == "resume") {
                // A created container paused and resumed is created again, not running.
                if p.op == "pause" { statusBeforePause = state.status; state.status = .paused }
                else { state.status = statusBeforePause }
                try? store.save(state)
            }
            if err == nil && !body.isEmpty {
                reply(p.fd, "ok " + String(decoding: body, as: UTF8.self))
                return
            }
            if p.op.hasPrefix("exec ") {
                let stream = UInt32(p.op.dropFirst(5)) ?? 0
                if let err {
                    if let r = relays.removeValue(forKey: stream) {
                        for e in r.ends { ends[StreamKey.of(e.stream, e.number)] = nil }
                        r.close()
                    }
                    reply(p.fd, "error " + err)
                } else {
                    write(p.fd, "ok \(stream)")  // the connection stays open for "exit N"
                }
                return
            }
            reply(p.fd, err.map { "error " + $0 } ?? "ok")
        case .log:
            log.debug("guest: \((try? f.asText()) ?? "")")
        default:
            break
        }
    }

    func handleSignals() {
        var info = signalfd_siginfo()
        while read(sigfd, &info, MemoryLayout<signalfd_siginfo>.size) > 0 {
            let sig = Int32(info.ssi_signo)
            if sig == SIGCHLD { checkVM(); continue }
            if sig == SIGWINCH && relays[Self.stream]?.terminal ?? -1 >= 0 { continue }  // a resize, seen by polling
            send(.signal(stream: Self.stream, signal: sig, all: false), replyTo: -1, op: "signal")
        }
    }

    func checkVM() {
        for pid in vm?.processes ?? [] {
            var st: Int32 = 0
            if waitpid(pid, &st, WNOHANG) == pid && exitCode == nil {
                log.error("VM process \(pid) exited unexpectedly; guest console: \(vm?.consoleTail() ?? "")")
                exitCode = 255
            }
        }
    }

    // MARK: preserved fds

    func adopt(_ ends: [StreamEnd], _ listeners: [PreservedListener], into r: Relay) {
        r.ends = ends
        r.listeners = listeners
        for e in ends { self.ends[StreamKey.of(e.stream, e.number)] = e }
    }

    func forgetIfFinished(_ e: StreamEnd) {
        guard e.isFinished else { return }
        ends[StreamKey.of(e.stream, e.number)] = nil
        if let l = connectionSources.removeValue(forKey: e.stream) {
            l.connections.remove(e.stream)
            window.forget(e.stream)
        }
    }

    /// Passes an exited process's status on once its preserved fds are done.
    func completeIfDone(_ r: Relay) {
        guard let code = r.exitCode, r.endsFinished else { return }
        if r.stream == Self.stream { exitCode = code; return }
        relays[r.stream] = nil
        if r.waiter >= 0 { reply(r.waiter, "exit \(code)") }
        r.close()
        window.forget(r.stream)
    }

    /// A connection on a preserved listening socket: relayed on a new stream, which the guest
    /// connects to the process's listening socket there.
    func accept(_ l: PreservedListener) {
        guard let fd = l.accept() else { return }
        let conn = nextStream
        nextStream += 1
        let e = StreamEnd(stream: conn, number: 0, fd: fd, sends: true, receives: true, access: .socket)
        ends[StreamKey.of(conn, 0)] = e
        l.connections.insert(conn)
        connectionSources[conn] = l
        send(.connect(stream: l.stream, fd: l.number, conn: conn), replyTo: -1, op: "connect \(conn)")
    }

    func pumpStdin(_ r: Relay) {
        let n = window.chunk(r.stream, fd: 0)
        let data: [UInt8]?
        do { data = try Posix.readSome(r.stdin, max: n) } catch { data = [] }
        guard let d = data else { return }
        if d.isEmpty {
            r.stdinOpen = false
            channel.send(.eof(r.stream, fd: 0))
            return
        }
        window.spend(r.stream, fd: 0, d.count)
        channel.send(.data(r.stream, fd: 0, d[...]))
    }

    func send(_ req: Request, replyTo fd: Int32, op: String) {
        let id = nextRequest
        nextRequest &+= 1
        if nextRequest == 0 { nextRequest = 1 }
        if fd >= 0 || op.hasPrefix("connect ") { pending[id] = (fd, op) }
        channel.send(.request(id, req))
    }

    // MARK: control socket

    func acceptControl() {
        let fd = kata_accept(ctlListen)
        if fd >= 0 { controls.append(fd) }
    }

    /// One request per connection: a text line, plus for exec a JSON body and the
    /// caller's three stdio fds passed with SCM_RIGHTS.
    func handleControl(_ fd: Int32) {
        controls.removeAll { $0 == fd }
        var buf = [UInt8](repeating: 0, count: 65536)
        var passed = [Int32](repeating: -1, count: Int(KATA_MAX_PASSED_FDS))
        var nfds: Int32 = 0
        let n = buf.withUnsafeMutableBytes { b in
            passed.withUnsafeMutableBufferPointer { kata_recv_fds(fd, b.baseAddress, b.count, $0.baseAddress, KATA_MAX_PASSED_FDS, &nfds) }
        }
        guard n > 0 else { for f in passed.prefix(Int(nfds)) { close(f) }; close(fd); return }
        var bytes = Array(buf[0..<Int(n)])
        let nl = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
        let words = String(decoding: bytes[..<nl], as: UTF8.self).split(separator: " ").map(String.init)
        let fds = Array(passed.prefix(Int(nfds)))
        switch words.first {
        case "start":
            if started { reply(fd, "error cannot start an already running container"); return }
            do throws(RuntimeError) { try Hooks.run(hooks.startContainer, kind: "startContainer", state: state.runcJSON(status: .created)) } catch {
                // The spec: a failed startContainer hook stops the container.
                reply(fd, "error " + error.description)
                send(.signal(stream: Self.stream, signal: SIGKILL, all: true), replyTo: -1, op: "kill")
                return
            }
            send(.startContainer, replyTo: fd, op: "start")
        case "kill":
            guard words.count == 3, let sig = Int32(words[1]) else { reply(fd, "error bad kill request"); return }
            send(.signal(stream: Self.stream, signal: sig, all: words[2] == "1"), replyTo: fd, op: "kill")
        case "signal":
            guard words.count == 3, let st = UInt32(words[1]), let sig = Int32(words[2]) else { reply(fd, "error bad signal request"); return }
            send(.signal(stream: st, signal: sig, all: false), replyTo: fd, op: "signal")
        case "pause", "resume":
            send(.pause(words[0] == "pause"), replyTo: fd, op: words[0])
        case "stats":
            send(.stats, replyTo: fd, op: "stats")
        case "processes":
            send(.processes, replyTo: fd, op: "processes")
        case "pids":
            // Host processes that stand for the container's: the face, this keeper, the face's
            // stand-in for the init (its other child, named like the init) and exec relays.
            let face = containerPID
            let children = face == getpid() ? [] : (try? Posix.readFile("/proc/\(face)/task/\(face)/children")) ?? []
            let standIns = String(decoding: children, as: UTF8.self).split(separator: " ").compactMap { pid_t($0) }.filter { $0 != getpid() }
            let pids = Array(Set([face, getpid()] + standIns)).sorted() + relays.values.compactMap { $0.hostPID }.filter { kill($0, 0) == 0 }
            reply(fd, "ok [" + pids.map { String($0) }.joined(separator: ",") + "]")
        case "update":
            guard words.count == 2, let len = Int(words[1]), len <= 1 << 20 else { reply(fd, "error bad update request"); return }
            guard let body = readBody(fd, have: Array(bytes[min(nl + 1, bytes.count)...]), length: len) else {
                reply(fd, "error update request truncated"); return
            }
            send(.update(resources: body), replyTo: fd, op: "update")
        case "resize":
            guard words.count == 4, let st = UInt32(words[1]), let r = UInt32(words[2]), let c = UInt32(words[3]) else { reply(fd, "error bad resize request"); return }
            send(.resize(stream: st, rows: r, cols: c), replyTo: fd, op: "resize")
        case "exec":
            // exec LEN tty|pipe [N]: stdin, stdout, stderr and N preserved fds come attached.
            let preserved = words.count == 4 ? Int(words[3]) : 0
            guard words.count == 3 || words.count == 4, let len = Int(words[1]), len <= Frame.maxPayload / 2,
                  let preserved, fds.count == 3 + preserved else {
                for f in fds { close(f) }
                reply(fd, "error bad exec request"); return
            }
            guard let body = readBody(fd, have: Array(bytes[min(nl + 1, bytes.count)...]), length: len) else {
                for f in fds { close(f) }; reply(fd, "error exec request truncated"); return
            }
            bytes = body
            let stream = nextStream
            let adopted: (specs: [PreservedFD], ends: [StreamEnd], listeners: [PreservedListener])
            do { adopted = try PreservedFDs.adopt(Array(fds[3...]), stream: stream, held: false) } catch {
                for f in fds.prefix(3) { close(f) }
                reply(fd, "error " + error.description); return
            }
            nextStream += 1
            let r = Relay(stream: stream, stdin: fds[0], stdout: fds[1], stderr: fds[2], waiter: fd,
                          started: true, tty: words[2] == "tty", ownsFDs: true)
            adopt(adopted.ends, adopted.listeners, into: r)
            relays[stream] = r
            send(.exec(stream: stream, process: Array(bytes.prefix(len)), preserved: adopted.specs), replyTo: fd, op: "exec \(stream)")
        default:
            for f in fds { close(f) }
            reply(fd, "error unknown request")
        }
    }

    var started: Bool { relays[Self.stream]?.started ?? false }

    /// The rest of a request's body after its header line.
    func readBody(_ fd: Int32, have: [UInt8], length: Int) -> [UInt8]? {
        var bytes = have
        while bytes.count < length {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 5000) > 0, let more = try? Posix.readSome(fd), !more.isEmpty else { return nil }
            bytes += more
        }
        return Array(bytes.prefix(length))
    }

    /// A line from an exec's waiting connection: a detached relay announces its host PID.
    func handleWaiter(_ r: Relay) {
        guard let data = try? Posix.readSome(r.waiter, max: 256), !data.isEmpty else {
            r.waiterClosed = true  // the caller went away; the process keeps running
            return
        }
        let line = String(decoding: data, as: UTF8.self)
        if line.hasPrefix("relay "), let pid = Int32(line.dropFirst(6).split(separator: "\n").first ?? "") { r.hostPID = pid }
    }

    func write(_ fd: Int32, _ line: String) {
        guard fd >= 0 else { return }
        try? Posix.writeAll(fd, Array((line + "\n").utf8))
    }

    func reply(_ fd: Int32, _ line: String) {
        guard fd >= 0 else { return }
        write(fd, line)
        close(fd)
        controls.removeAll { $0 == fd }
    }

    // MARK: ending

    func finish() -> Int32 {
        let code = exitCode ?? 255
        state.status = .stopped
        state.exitStatus = code
        try? store.save(state)
        for (_, p) in pending { reply(p.fd, "error container exited") }
        for r in relays.values {
            if r.waiter >= 0 { reply(r.waiter, "exit 137") }  // the VM is going away under it
            r.close()
        }
        relays.removeAll()
        for e in ends.values { e.close() }
        ends.removeAll()
        teardown()
        return code
    }

    func teardown() {
        vm?.stop()
        plumbing?.undo()  // after the VM: QEMU's tap copies are closed, the built-in VMM no longer polls them
        for c in controls { close(c) }
        if ctlListen >= 0 { close(ctlListen); unlink(ControlSocket.name) }
        SharedDirectory.remove(dir + "/shared")
    }
}
