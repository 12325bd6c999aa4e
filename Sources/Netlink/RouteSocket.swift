#if canImport(Glibc)
import Glibc
#endif
import CShims

/// A NETLINK_ROUTE socket in the network namespace of the thread that opened it (it stays
/// there even if the thread moves). Requests are synchronous: send, then read until the
/// kernel's ack, error or end of dump.
public final class RouteSocket {
    public let fd: Int32
    var seq: UInt32 = 0

    public init() throws(NetlinkError) {
        fd = kata_netlink_route_socket()
        if fd < 0 { throw NetlinkError("open netlink socket", code: errno) }
    }

    deinit { close(fd) }

    /// Sends a request that wants an ack; throws the kernel's error, naming `what`.
    public func perform(_ r: NetlinkRequest, _ what: @autoclosure () -> String) throws(NetlinkError) {
        _ = try exchange(r, what)
    }

    /// Sends a dump request and returns every message of the reply.
    public func dump(_ r: NetlinkRequest, _ what: @autoclosure () -> String) throws(NetlinkError) -> [NetlinkReply] {
        try exchange(r, what)
    }

    func exchange(_ r: NetlinkRequest, _ what: () -> String) throws(NetlinkError) -> [NetlinkReply] {
        seq &+= 1
        let msg = r.finish(seq: seq)
        let sent = msg.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        if sent != msg.count { throw NetlinkError(what(), code: sent < 0 ? errno : EIO) }
        var out: [NetlinkReply] = []
        var buf = [UInt8](repeating: 0, count: 32768)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw NetlinkError(what(), code: errno)
            }
            for m in try NetlinkReply.split(Array(buf[0..<n])) where m.seq == seq {
                if m.type == NL.done { return out }
                if m.type == NL.error {
                    let (code, text) = m.errorCode()
                    if code != 0 { throw NetlinkError(what(), code: code, detail: text) }
                    return out
                }
                out.append(m)
            }
        }
    }

    // MARK: queries

    public func links() throws(NetlinkError) -> [Link] {
        try dump(.dumpLinks(), "list links").compactMap(Link.init)
    }

    public func link(named name: String) throws(NetlinkError) -> Link {
        guard let l = try links().first(where: { $0.name == name }) else { throw NetlinkError("find link \(name)", code: ENODEV) }
        return l
    }

    public func addresses() throws(NetlinkError) -> [Address] {
        try dump(.dumpAddresses(family: 0), "list addresses").compactMap(Address.init)
    }

    public func routes() throws(NetlinkError) -> [Route] {
        try dump(.dumpRoutes(family: 0), "list routes").compactMap(Route.init)
    }
}
