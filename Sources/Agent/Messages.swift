/// Requests the host sends to the guest agent, and their encoding.
public enum Request: Equatable, Sendable {
    /// Build the container (namespaces, mounts, pivot_root) and stop before execve.
    case createContainer(CreateContainer)
    /// execve the container's process.
    case startContainer
    /// Deliver `signal` to the process on `stream` (or every container process when `all`).
    case signal(stream: UInt32, signal: Int32, all: Bool)
    /// Power the guest off.
    case shutdown
    /// Run another process in the container (runc exec): a process.json document, and what
    /// the process gets as fds 3, 4, ... (runc --preserve-fds).
    case exec(stream: UInt32, process: [UInt8], preserved: [PreservedFD] = [])
    /// Set the window size of the terminal of the process on `stream`.
    case resize(stream: UInt32, rows: UInt32, cols: UInt32)
    /// Freeze (true) or thaw (false) every process of the container.
    case pause(Bool)
    /// The container's cgroup statistics, as runc's stats JSON (response body).
    case stats
    /// Apply new linux.resources (a JSON object) to the container's cgroup.
    case update(resources: [UInt8])
    /// The container's processes as seen in the guest: JSON [{pid, ppid, uid, state, args}].
    case processes
    /// A connection arrived on the host socket behind the listening socket that the process on
    /// `stream` has as fd `fd`: connect to its guest twin and relay it on stream `conn`, fd 0.
    case connect(stream: UInt32, fd: UInt8, conn: UInt32)

    public var name: String {
        switch self {
        case .createContainer: return "create"
        case .startContainer: return "start"
        case .signal(_, let sig, let all): return "signal \(sig)\(all ? " all" : "")"
        case .shutdown: return "shutdown"
        case .exec(let s, _, _): return "exec on stream \(s)"
        case .resize(let s, let r, let c): return "resize \(s) to \(r)x\(c)"
        case .pause(let on): return on ? "pause" : "resume"
        case .stats: return "stats"
        case .update: return "update"
        case .processes: return "processes"
        case .connect(let s, let fd, let c): return "connect fd \(fd) of stream \(s) as stream \(c)"
        }
    }

    enum Op: UInt8 {
        case create = 1, start = 2, signal = 3, shutdown = 4, exec = 5, resize = 6
        case pause = 7, stats = 8, update = 9, processes = 10, connect = 11
    }

    public func encode(into w: inout WireWriter) {
        switch self {
        case .createContainer(let c):
            w.u8(Op.create.rawValue)
            w.string(c.id); w.blob(c.config); w.string(c.rootfs)
            w.u32(UInt32(c.binds.count))
            for b in c.binds { w.string(b.source); w.string(b.guestPath) }
            w.u32(c.stream)
            PreservedFD.encode(c.preserved, into: &w)
            w.blob(c.seccomp)
            c.network.encode(into: &w)
        case .startContainer: w.u8(Op.start.rawValue)
        case .signal(let s, let sig, let all): w.u8(Op.signal.rawValue); w.u32(s); w.i32(sig); w.bool(all)
        case .shutdown: w.u8(Op.shutdown.rawValue)
        case .exec(let s, let p, let fds): w.u8(Op.exec.rawValue); w.u32(s); w.blob(p); PreservedFD.encode(fds, into: &w)
        case .resize(let s, let r, let c): w.u8(Op.resize.rawValue); w.u32(s); w.u32(r); w.u32(c)
        case .pause(let on): w.u8(Op.pause.rawValue); w.bool(on)
        case .stats: w.u8(Op.stats.rawValue)
        case .update(let r): w.u8(Op.update.rawValue); w.blob(r)
        case .processes: w.u8(Op.processes.rawValue)
        case .connect(let s, let fd, let c): w.u8(Op.connect.rawValue); w.u32(s); w.u8(fd); w.u32(c)
        }
    }

    public static func decode(_ r: inout WireReader) throws(WireError) -> Request {
        guard let op = Op(rawValue: try r.u8()) else { throw WireError("unknown request") }
        switch op {
        case .create:
            let id = try r.string(), config = try r.blob(), rootfs = try r.string()
            let n = Int(try r.u32())
            guard n <= r.remaining / 8 else { throw WireError("bind count \(n) exceeds message size") }
            var binds: [BindMap] = []
            for _ in 0..<n { binds.append(BindMap(source: try r.string(), guestPath: try r.string())) }
            let stream = try r.u32()
            let preserved = try PreservedFD.decodeList(&r)
            let seccomp = try r.blob()
            let network = try NetworkConfig.decode(&r)
            return .createContainer(CreateContainer(id: id, config: config, rootfs: rootfs, binds: binds, stream: stream,
                                                    preserved: preserved, seccomp: seccomp, network: network))
        case .start: return .startContainer
        case .signal: return .signal(stream: try r.u32(), signal: try r.i32(), all: try r.bool())
        case .shutdown: return .shutdown
        case .exec: return .exec(stream: try r.u32(), process: try r.blob(), preserved: try PreservedFD.decodeList(&r))
        case .resize: return .resize(stream: try r.u32(), rows: try r.u32(), cols: try r.u32())
        case .pause: return .pause(try r.bool())
        case .stats: return .stats
        case .update: return .update(resources: try r.blob())
        case .processes: return .processes
        case .connect: return .connect(stream: try r.u32(), fd: try r.u8(), conn: try r.u32())
        }
    }
}

/// Where a host bind-mount source appears inside the guest (under the shared directory).
public struct BindMap: Equatable, Sendable {
    public var source: String
    public var guestPath: String
    public init(source: String, guestPath: String) { self.source = source; self.guestPath = guestPath }
}

public struct CreateContainer: Equatable, Sendable {
    public var id: String
    /// config.json as the user wrote it; the guest parses it with the same OCI code.
    public var config: [UInt8]
    /// The container's root directory as the guest sees it.
    public var rootfs: String
    public var binds: [BindMap]
    /// Stream that carries the container process's stdio and exit status.
    public var stream: UInt32
    /// What the process gets as fds 3, 4, ... (create --preserve-fds).
    public var preserved: [PreservedFD]
    /// linux.seccomp compiled by the host (SeccompProgram.encoded); empty: none, or the
    /// guest compiles it itself.
    public var seccomp: [UInt8]
    /// Interfaces and routes for the container's network namespace.
    public var network: NetworkConfig
    public init(id: String, config: [UInt8], rootfs: String, binds: [BindMap], stream: UInt32,
                preserved: [PreservedFD] = [], seccomp: [UInt8] = [], network: NetworkConfig = NetworkConfig()) {
        self.id = id; self.config = config; self.rootfs = rootfs; self.binds = binds; self.stream = stream
        self.preserved = preserved; self.seccomp = seccomp; self.network = network
    }
}

extension Frame {
    public static func request(_ id: UInt32, _ req: Request) -> Frame {
        var w = WireWriter()
        w.u32(id)
        req.encode(into: &w)
        return Frame(.request, payload: w.bytes)
    }
    /// A reply: the error text, or success with an optional body (stats, process lists).
    public static func response(_ id: UInt32, error: String?, body: [UInt8] = []) -> Frame {
        var w = WireWriter()
        w.u32(id)
        w.bool(error == nil)
        w.string(error ?? "")
        w.blob(body)
        return Frame(.response, payload: w.bytes)
    }
    public static func data(_ stream: UInt32, fd: UInt8, _ bytes: ArraySlice<UInt8>) -> Frame {
        var p: [UInt8] = [fd]
        p.append(contentsOf: bytes)
        return Frame(.data, stream: stream, payload: p)
    }
    public static func eof(_ stream: UInt32, fd: UInt8) -> Frame { Frame(.eof, stream: stream, payload: [fd]) }
    public static func shut(_ stream: UInt32, fd: UInt8) -> Frame { Frame(.shut, stream: stream, payload: [fd]) }
    public static func credit(_ stream: UInt32, fd: UInt8, _ n: UInt32) -> Frame {
        var w = WireWriter(); w.u8(fd); w.u32(n)
        return Frame(.credit, stream: stream, payload: w.bytes)
    }
    public static func exit(_ stream: UInt32, status: Int32) -> Frame {
        var w = WireWriter(); w.i32(status)
        return Frame(.exit, stream: stream, payload: w.bytes)
    }
    public static func text(_ kind: Kind, _ s: String) -> Frame { var w = WireWriter(); w.string(s); return Frame(kind, payload: w.bytes) }

    /// Decodes a request frame into (id, request).
    public func asRequest() throws(WireError) -> (UInt32, Request) {
        var r = WireReader(payload)
        return (try r.u32(), try Request.decode(&r))
    }
    /// Decodes a response frame into (id, error or nil).
    public func asResponse() throws(WireError) -> (UInt32, String?) {
        let (id, err, _) = try asResponseWithBody()
        return (id, err)
    }
    public func asResponseWithBody() throws(WireError) -> (UInt32, String?, [UInt8]) {
        var r = WireReader(payload)
        let id = try r.u32(), ok = try r.bool(), err = try r.string()
        let body = r.remaining > 0 ? try r.blob() : []
        return (id, ok ? nil : err, body)
    }
    public func asText() throws(WireError) -> String { var r = WireReader(payload); return try r.string() }
    public func asCredit() throws(WireError) -> (UInt8, UInt32) { var r = WireReader(payload); return (try r.u8(), try r.u32()) }
    public func asExit() throws(WireError) -> Int32 { var r = WireReader(payload); return try r.i32() }
    public var fd: UInt8 { payload.first ?? 255 }
    public var body: ArraySlice<UInt8> { payload.dropFirst() }
}
