#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims

/// The guest objects that stand for a process's preserved fds (runc --preserve-fds; see
/// PreservedFD): made by the agent before fork. The child installs `container` as fds 3, 4,
/// ... just before execve; the agent relays the other ends, and keeps the address of each
/// listening socket so it can connect there for every connection the host accepts.
struct PreservedObjects {
    /// What the process gets, in order; every one at or above `base`, so installing them as
    /// 3, 4, ... never clobbers another (close-on-exec; dup2 clears that on the copies).
    var container: [Int32] = []
    /// The agent's ends: (fd number in the process, fd, kind).
    var agent: [(number: UInt8, fd: Int32, kind: PreservedFD.Kind)] = []
    /// Listening sockets' addresses by fd number.
    var listeners: [UInt8: [UInt8]] = [:]

    /// Every fd the child still needs after installing must be at or above this.
    static func base(_ count: Int) -> Int32 { Int32(PreservedFD.firstFD) + Int32(count) }

    static func make(_ list: [PreservedFD]) throws(SetupError) -> PreservedObjects {
        var objects = PreservedObjects()
        let base = base(list.count)
        do throws(SetupError) {
            for (i, p) in list.enumerated() {
                let number = PreservedFD.firstFD + UInt8(i)
                switch p.kind {
                case .input, .output:
                    let pipe: (read: Int32, write: Int32)
                    do { pipe = try Posix.pipe() } catch { throw SetupError("preserved fd \(number): \(error)") }
                    let (mine, theirs) = p.kind == .input ? (pipe.write, pipe.read) : (pipe.read, pipe.write)
                    Posix.setNonblocking(mine)
                    objects.agent.append((number, mine, p.kind))
                    objects.container.append(try moveAbove(theirs, base))
                case .duplex:
                    var sv: [Int32] = [0, 0]
                    if socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) != 0 {
                        throw SetupError.sys("preserved fd \(number): socketpair")
                    }
                    Posix.setNonblocking(sv[0])
                    objects.agent.append((number, sv[0], .duplex))
                    objects.container.append(try moveAbove(sv[1], base))
                case .listener:
                    if p.family != UInt32(AF_UNIX) { _ = kata_loopback_up() }  // the guest's own lo
                    var addr = [UInt8](repeating: 0, count: 128)
                    var len: UInt32 = 0
                    let fd = addr.withUnsafeMutableBytes { kata_listen_like(Int32(p.family), Int32(p.port), $0.baseAddress, &len) }
                    if fd < 0 { throw SetupError.sys("preserved fd \(number): listen (family \(p.family))") }
                    objects.listeners[number] = Array(addr.prefix(Int(len)))
                    objects.container.append(try moveAbove(fd, base))
                }
            }
        } catch {
            objects.closeAll()
            throw error
        }
        return objects
    }

    /// `fd` re-numbered to at least `base`, close-on-exec.
    static func moveAbove(_ fd: Int32, _ base: Int32) throws(SetupError) -> Int32 {
        if fd >= base { return fd }
        let moved = kata_fcntl_int(fd, F_DUPFD_CLOEXEC, base)
        let e = errno
        close(fd)
        if moved < 0 { errno = e; throw .sys("move fd above \(base)") }
        return moved
    }

    /// In the child, just before execve: the process's fds 3, 4, ... Nothing may be traced
    /// after this (the console fd may have been replaced).
    func install() -> SetupError? {
        for (i, fd) in container.enumerated() where dup2(fd, Int32(PreservedFD.firstFD) + Int32(i)) < 0 {
            return .sys("install preserved fd \(Int(PreservedFD.firstFD) + i)")
        }
        return nil
    }

    /// In the agent after fork: the process holds its ends now.
    func closeContainerEnds() { for fd in container { close(fd) } }

    func closeAll() {
        closeContainerEnds()
        for a in agent { close(a.fd) }
    }

    /// The agent's relays on the process's stream; held until the process starts.
    func ends(stream: UInt32, held: Bool) -> [StreamEnd] {
        agent.map { a in
            let e = StreamEnd(stream: stream, number: a.number, fd: a.fd, sends: a.kind != .input, receives: a.kind != .output,
                              access: a.kind == .duplex ? .socket : .nonblocking, ownsSocket: a.kind == .duplex)
            e.held = held
            return e
        }
    }
}
