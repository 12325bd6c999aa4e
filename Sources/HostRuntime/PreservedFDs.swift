#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims

/// runc's --preserve-fds N on the host: the caller's fds 3..3+N-1 stay with the keeper, and
/// the container process gets a guest object of the matching kind as the same fd number
/// (see PreservedFD). What has no such object is refused, naming the fd and its kind.
public enum PreservedFDs {
    /// --preserve-fds's value: a count (0 when absent).
    public static func count(_ value: String?) throws(RuntimeError) -> Int {
        guard let value else { return 0 }
        guard let n = Int(value), n >= 0 else { throw RuntimeError("invalid --preserve-fds \"\(value)\": expected a number of fds") }
        guard n <= PreservedFD.maxCount else { throw RuntimeError("--preserve-fds \(n): at most \(PreservedFD.maxCount) fds can be preserved") }
        return n
    }

    /// The fd numbers of `count` preserved fds: 3, 4, ...
    public static func numbers(_ count: Int) -> [Int32] { (0..<count).map { Int32(PreservedFD.firstFD) + Int32($0) } }

    /// What each of the fds becomes in the container; throws for the first that cannot cross.
    /// `own` are fds this process opened itself (its log file), which a closed caller fd
    /// number may have been reused for.
    public static func check(_ fds: [Int32], own: [Int32] = []) throws(RuntimeError) -> [PreservedFD] {
        var out: [PreservedFD] = []
        for (i, fd) in fds.enumerated() {
            if own.contains(fd) { throw RuntimeError("preserved fd \(Int(PreservedFD.firstFD) + i) is not open") }
            out.append(try classify(fd, number: Int(PreservedFD.firstFD) + i).spec)
        }
        return out
    }

    struct Class {
        var spec: PreservedFD
        var access: StreamEnd.Access
        var fifo = false
    }

    static func classify(_ fd: Int32, number: Int) throws(RuntimeError) -> Class {
        func refuse(_ what: String) -> RuntimeError {
            RuntimeError("preserved fd \(number) is \(what), which cannot be passed into the VM")
        }
        var st = stat()
        let flags = kata_fcntl_int(fd, F_GETFL, 0)
        guard flags >= 0, fstat(fd, &st) == 0 else { throw RuntimeError("preserved fd \(number) is not open") }
        if flags & 0o10000000 != 0 { throw refuse("an O_PATH descriptor") }
        let mode = flags & O_ACCMODE
        let direction: PreservedFD.Kind = mode == O_RDONLY ? .input : mode == O_WRONLY ? .output : .duplex
        switch st.st_mode & S_IFMT {
        case S_IFREG, S_IFBLK:
            // Reads stream the content from the current offset; seeking is not possible in the guest.
            return Class(spec: PreservedFD(direction), access: .file)
        case S_IFCHR:
            return Class(spec: PreservedFD(direction), access: .guarded)
        case S_IFIFO:
            if direction == .duplex { throw refuse("a FIFO opened for reading and writing") }
            return Class(spec: PreservedFD(direction), access: .nonblocking, fifo: true)
        case S_IFSOCK:
            return try classifySocket(fd, refuse)
        case S_IFDIR:
            throw refuse("a directory")
        default:
            throw refuse(anonymousKind(fd))
        }
    }

    static func classifySocket(_ fd: Int32, _ refuse: (String) -> RuntimeError) throws(RuntimeError) -> Class {
        var info = kata_socket_info()
        guard kata_socket_info(fd, &info) == 0 else { throw refuse("a socket that cannot be inspected") }
        guard info.type == Int32(SOCK_STREAM.rawValue) else {
            let type = info.type == Int32(SOCK_DGRAM.rawValue) ? "datagram" : info.type == Int32(SOCK_SEQPACKET.rawValue) ? "seqpacket" : "raw"
            throw refuse("a \(type) socket (only stream sockets are relayed)")
        }
        if info.listening != 0 {
            guard [AF_UNIX, AF_INET, AF_INET6].contains(info.family) else { throw refuse("a listening socket of address family \(info.family)") }
            return Class(spec: PreservedFD(.listener, family: UInt32(info.family), port: UInt32(info.port)), access: .socket)
        }
        guard info.connected != 0 else { throw refuse("a stream socket that is neither connected nor listening") }
        return Class(spec: PreservedFD(.duplex), access: .socket)
    }

    /// "an epoll instance" from /proc/self/fd's "anon_inode:[eventpoll]".
    static func anonymousKind(_ fd: Int32) -> String {
        var buf = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/self/fd/\(fd)", &buf, 255)
        let target = n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "unknown"
        let names = ["[eventpoll]": "an epoll instance", "[eventfd]": "an eventfd", "[signalfd]": "a signalfd",
                     "[timerfd]": "a timerfd", "inotify": "an inotify instance", "[pidfd]": "a pidfd",
                     "[fanotify]": "a fanotify instance", "[io_uring]": "an io_uring instance"]
        for (k, v) in names where target.hasSuffix(k) { return "\(v) (\(target))" }
        return "an unsupported kind of file (\(target))"
    }

    /// The keeper's side: takes over `fds` (the process's 3, 4, ...; closed here on failure)
    /// and makes their relays on `stream`. FIFOs are reopened non-blocking through /proc so
    /// the caller's file flags stay as they were.
    public static func adopt(_ fds: [Int32], stream: UInt32, held: Bool) throws(RuntimeError) -> (specs: [PreservedFD], ends: [StreamEnd], listeners: [PreservedListener]) {
        var specs: [PreservedFD] = [], ends: [StreamEnd] = [], listeners: [PreservedListener] = []
        var taken = 0
        do throws(RuntimeError) {
            for (i, fd) in fds.enumerated() {
                let number = PreservedFD.firstFD + UInt8(i)
                var c = try classify(fd, number: Int(number))
                var mine = fd
                if c.fifo {
                    let flags = (c.spec.kind == .input ? O_RDONLY : O_WRONLY) | O_NONBLOCK | O_CLOEXEC
                    let reopened = open("/proc/self/fd/\(fd)", flags)
                    if reopened >= 0 { close(fd); mine = reopened } else { c.access = .guarded }  // ENXIO: no reader left
                }
                Posix.setCloexec(mine)
                taken = i + 1
                specs.append(c.spec)
                if c.spec.kind == .listener {
                    listeners.append(PreservedListener(stream: stream, number: number, fd: mine, held: held))
                    continue
                }
                let e = StreamEnd(stream: stream, number: number, fd: mine, sends: c.spec.kind != .output,
                                  receives: c.spec.kind != .input, access: c.access)
                e.held = held
                ends.append(e)
            }
        } catch {
            for e in ends { e.close() }
            for l in listeners { l.close() }
            for fd in fds[taken...] { close(fd) }
            throw error
        }
        return (specs, ends, listeners)
    }
}

/// A preserved listening socket on the host: each connection it accepts becomes a stream of
/// its own, connected in the guest to the process's listening socket there.
public final class PreservedListener {
    public let stream: UInt32
    public let number: UInt8
    public private(set) var fd: Int32
    public var held: Bool
    /// Streams of the connections it accepted that are still relayed.
    public var connections: Set<UInt32> = []
    /// Beyond this many live connections, further ones wait in the host socket's backlog.
    public static let maxConnections = 64

    init(stream: UInt32, number: UInt8, fd: Int32, held: Bool) {
        self.stream = stream; self.number = number; self.fd = fd; self.held = held
    }

    public var wantsAccept: Bool { fd >= 0 && !held && connections.count < Self.maxConnections }

    /// The next connection, non-blocking; nil when none is waiting.
    public func accept() -> Int32? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) > 0 else { return nil }
        let c = kata_accept(fd)
        guard c >= 0 else { return nil }
        Posix.setNonblocking(c)
        return c
    }

    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
}
