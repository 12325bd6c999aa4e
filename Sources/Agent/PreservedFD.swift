/// What one fd of runc's --preserve-fds becomes inside the VM. A VM cannot share host fds:
/// the keeper holds the caller's fd and the guest gives the process (as fd 3+i) an object of
/// the matching kind whose bytes the agent relays on the process's stream, fd number 3+i.
public struct PreservedFD: Equatable, Sendable {
    public enum Kind: UInt8, Sendable {
        /// Host → guest (a pipe, FIFO, file or device opened for reading): the read end of a pipe.
        case input = 1
        /// Guest → host (opened for writing): the write end of a pipe.
        case output = 2
        /// Both ways (a connected stream socket, a read-write fd): one end of a unix socketpair.
        case duplex = 3
        /// A listening stream socket: the process gets a listening socket of the same family in
        /// the guest; each connection the host socket accepts is relayed as its own stream.
        case listener = 4
    }
    public var kind: Kind
    /// For a listener: the host socket's address family (AF_UNIX, AF_INET, AF_INET6) and port,
    /// so the guest listens on the like (same port when it is free).
    public var family: UInt32
    public var port: UInt32

    public init(_ kind: Kind, family: UInt32 = 0, port: UInt32 = 0) {
        self.kind = kind; self.family = family; self.port = port
    }

    /// The first fd number and how many fit in a frame's u8 fd field (and in one SCM_RIGHTS
    /// message with exec's three stdio fds: the kernel's SCM_MAX_FD is 253).
    public static let firstFD: UInt8 = 3
    public static let maxCount = 250

    static func encode(_ list: [PreservedFD], into w: inout WireWriter) {
        w.u32(UInt32(list.count))
        for p in list { w.u8(p.kind.rawValue); w.u32(p.family); w.u32(p.port) }
    }

    static func decodeList(_ r: inout WireReader) throws(WireError) -> [PreservedFD] {
        let n = Int(try r.u32())
        guard n <= maxCount, n <= r.remaining / 9 else { throw WireError("preserved fd count \(n) is out of range") }
        var out: [PreservedFD] = []
        for _ in 0..<n {
            let raw = try r.u8()
            guard let kind = Kind(rawValue: raw) else { throw WireError("unknown preserved fd kind \(raw)") }
            out.append(PreservedFD(kind, family: try r.u32(), port: try r.u32()))
        }
        return out
    }
}
