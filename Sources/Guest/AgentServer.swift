#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import OCI

/// The guest side of the agent protocol: one poll loop over the agent port, the
/// container's stdio pipes and SIGCHLD. Output is read only while the host has
/// granted credit, so a slow host reader stalls the process, not the guest.
final class AgentServer {
    let channel: Channel
    var window = SendWindow()
    var container: ContainerProcess?
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
            var fds: [pollfd] = []
            fds.append(pollfd(fd: channel.fd, events: Int16(POLLIN) | (channel.wantsWrite ? Int16(POLLOUT) : 0), revents: 0))
            fds.append(pollfd(fd: sigfd, events: Int16(POLLIN), revents: 0))
            if let c = container, c.started {
                if c.stdout >= 0 && window.chunk(c.stream, fd: 1) > 0 { fds.append(pollfd(fd: c.stdout, events: Int16(POLLIN), revents: 0)) }
                if c.stderr >= 0 && window.chunk(c.stream, fd: 2) > 0 { fds.append(pollfd(fd: c.stderr, events: Int16(POLLIN), revents: 0)) }
                if c.stdin >= 0 && !c.stdinQueue.isEmpty { fds.append(pollfd(fd: c.stdin, events: Int16(POLLOUT), revents: 0)) }
            }
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0 && errno != EINTR { GuestInit.fatal("poll: \(String(cString: strerror(errno)))") }
            channel.flush()
            if fds[0].revents != 0 { handleChannel() }
            if fds[1].revents != 0 { reap() }
            if let c = container {
                for p in fds.dropFirst(2) where p.revents != 0 {
                    if p.fd == c.stdout { pumpOutput(c, fd: 1) }
                    else if p.fd == c.stderr { pumpOutput(c, fd: 2) }
                    else if p.fd == c.stdin { flushStdin(c) }
                }
                finishIfDone(c)
            }
        }
    }

    func handleChannel() {
        let frames: [Frame]
        do { frames = try channel.receive() } catch { GuestInit.fatal("agent protocol: \(error)") }
        for f in frames { handle(f) }
        if channel.isClosed { GuestInit.fatal("agent channel closed by the host") }
    }

    func handle(_ f: Frame) {
        switch f.kind {
        case .request:
            guard let (id, req) = try? f.asRequest() else { GuestInit.log("bad request"); return }
            GuestInit.trace("request \(id): \(req.name)")
            let err = perform(req)
            GuestInit.trace("request \(id) done: \(err ?? "ok")")
            channel.send(.response(id, error: err))
        case .data:
            guard let c = container, c.stream == f.stream, f.fd == 0, c.stdin >= 0 else { return }
            c.stdinQueue.append(contentsOf: f.body)
            flushStdin(c)
        case .eof:
            guard let c = container, c.stream == f.stream, f.fd == 0 else { return }
            c.stdinEOF = true
            flushStdin(c)
        case .credit:
            if let (fd, n) = try? f.asCredit() { window.grant(f.stream, fd: fd, Int(n)) }
        default:
            GuestInit.log("unexpected frame \(f.kind)")
        }
    }

    /// Runs a request; nil on success, the error text otherwise.
    func perform(_ req: Request) -> String? {
        switch req {
        case .createContainer(let c):
            guard container == nil else { return "a container already exists in this VM" }
            do {
                let spec = try SpecParser.parse(c.config)
                let setup = try ContainerSetup(spec: spec, rootfs: c.rootfs, binds: c.binds)
                container = try ContainerProcess(setup: setup, stream: c.stream)
                return nil
            } catch let e as SpecError { return e.description }
            catch { return "\(error)" }
        case .startContainer:
            guard let c = container else { return "no container to start" }
            do { try c.start(); return nil } catch { return error.description }
        case .signal(let stream, let sig, let all):
            guard let c = container, c.stream == stream else { return "no such process" }
            if c.waitStatus != nil { return "container process has already exited" }
            if all { signalAll(c, sig) } else if kill(c.pid, sig) != 0 { return "kill: \(String(cString: strerror(errno)))" }
            return nil
        case .shutdown:
            sync()
            _ = kata_reboot(0x0123_4567)  // RB_AUTOBOOT ends the VM (see GuestInit.fatal)
            return "poweroff failed"
        }
    }

    /// Every process in the container's pid namespace (or every process but init without one).
    func signalAll(_ c: ContainerProcess, _ sig: Int32) {
        let target = nsLink(c.pid)
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
            if let c = container, pid == c.pid { c.waitStatus = st; GuestInit.trace("container exited, status \(st)") }
        }
    }

    func pumpOutput(_ c: ContainerProcess, fd: UInt8) {
        let src = fd == 1 ? c.stdout : c.stderr
        let max = window.chunk(c.stream, fd: fd)
        guard src >= 0, max > 0 else { return }
        let chunk: [UInt8]?
        do { chunk = try Posix.readSome(src, max: max) } catch { chunk = [] }
        guard let data = chunk else { return }
        if data.isEmpty {
            close(src)
            if fd == 1 { c.stdout = -1 } else { c.stderr = -1 }
            channel.send(.eof(c.stream, fd: fd))
            return
        }
        window.spend(c.stream, fd: fd, data.count)
        channel.send(.data(c.stream, fd: fd, data[...]))
    }

    func flushStdin(_ c: ContainerProcess) {
        guard c.stdin >= 0 else { return }
        while !c.stdinQueue.isEmpty {
            let n = c.stdinQueue.withUnsafeBytes { write(c.stdin, $0.baseAddress, $0.count) }
            if n > 0 {
                c.stdinQueue.removeFirst(n)
                channel.send(.credit(c.stream, fd: 0, UInt32(n)))
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && errno == EAGAIN {
                return
            } else {
                // The reader went away (EPIPE): drop input, as a pipe would.
                c.stdinQueue.removeAll(); c.stdinEOF = true
            }
        }
        if c.stdinEOF { close(c.stdin); c.stdin = -1 }
    }

    /// After the process exits, send what is left in its pipes, then its status.
    /// Output held by a leftover grandchild does not delay the status forever.
    func finishIfDone(_ c: ContainerProcess) {
        guard let st = c.waitStatus, !c.exitSent else { return }
        for fd: UInt8 in [1, 2] {
            let src = fd == 1 ? c.stdout : c.stderr
            while src >= 0 && (fd == 1 ? c.stdout : c.stderr) >= 0 && window.chunk(c.stream, fd: fd) > 0 {
                let r: [UInt8]?
                do { r = try Posix.readSome(src, max: window.chunk(c.stream, fd: fd)) } catch { r = [] }
                if let data = r, !data.isEmpty {
                    window.spend(c.stream, fd: fd, data.count)
                    channel.send(.data(c.stream, fd: fd, data[...]))
                    continue
                }
                close(src)
                if fd == 1 { c.stdout = -1 } else { c.stderr = -1 }
                channel.send(.eof(c.stream, fd: fd))
            }
        }
        if c.stdout < 0 && c.stderr < 0 {
            c.exitSent = true
            if c.stdin >= 0 { close(c.stdin); c.stdin = -1 }
            channel.send(.exit(c.stream, status: st))
        }
    }
}
