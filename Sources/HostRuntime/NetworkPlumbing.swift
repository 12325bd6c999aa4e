#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import Netlink

/// What the container's network namespace holds, read after the hooks ran: the interfaces to
/// give the VM (Ethernet devices such as a veth, not lo or taps) with their addresses and routes.
public struct NetworkScan: Equatable, Sendable {
    public var links: [Link] = []
    public var config = NetworkConfig()
    /// Things the VM will not get, for a warning.
    public var skipped: [String] = []
    /// A tap of ours already here: the namespace belongs to another container's VM.
    public var sharedTap: String?

    public static func read(_ s: RouteSocket) throws(NetlinkError) -> NetworkScan {
        let links = try s.links()
        // Addresses and routes are only worth a dump when there is an interface to carry them.
        guard links.contains(where: selectable) else { return select(links: links, addresses: [], routes: []) }
        return select(links: links, addresses: try s.addresses(), routes: try s.routes())
    }

    static func selectable(_ l: Link) -> Bool { !l.isLoopback && l.hardwareType == NL.arphrdEther && l.kind != "tun" }

    /// Kata's rules: every Ethernet link but taps; its global addresses (the guest makes its own
    /// IPv6 link-local one from the same MAC); main-table unicast routes through those links,
    /// except the ones the kernel adds by itself for each address.
    public static func select(links: [Link], addresses: [Address], routes: [Route]) -> NetworkScan {
        var scan = NetworkScan()
        for l in links where !l.isLoopback {
            if l.kind == "tun" && l.name.hasPrefix("tap") && l.name.hasSuffix("_kata") { scan.sharedTap = l.name }
            guard selectable(l) else {
                scan.skipped.append("interface \(l.name) (\(l.kind ?? "type \(l.hardwareType)")) is not connected to the VM")
                continue
            }
            let addrs = addresses.filter { $0.index == l.index && !($0.address.count == 16 && $0.scope >= NL.scopeLink) }
            scan.links.append(l)
            scan.config.interfaces.append(NetInterface(name: l.name, mac: l.mac, mtu: l.mtu,
                                                       addresses: addrs.map { IPPrefix($0.address, prefix: $0.prefix) }))
        }
        for r in routes where r.table == UInt32(NL.tableMain) && r.type == NL.typeUnicast && r.proto != NL.protoKernel {
            guard let dev = scan.links.first(where: { $0.index == r.oif })?.name else { continue }
            if r.multipath { scan.skipped.append("a multipath route through \(dev) is not reproduced in the VM"); continue }
            scan.config.routes.append(NetRoute(inet6: r.inet6, destination: r.destination.isEmpty ? nil : IPPrefix(r.destination, prefix: r.prefix),
                                               gateway: r.gateway, device: dev, source: r.source, scope: r.scope, metric: r.metric))
        }
        return scan
    }
}

/// Kata's tc-filter model: for each interface a tap that QEMU's virtio-net device uses, and
/// two ingress redirects (tc u32 match-all + mirred), interface -> tap and tap -> interface,
/// so that frames pass between the container network and the VM untouched. Lives in the
/// keeper's (the container's) network namespace. The taps are not persistent: they vanish
/// when the keeper and QEMU close them, taking their own qdiscs along; the interfaces'
/// ingress qdiscs are removed by `undo` (keeper), or from the record (face, delete).
public final class NetworkPlumbing {
    public struct Tap { public var fd: Int32; public var name: String; public var mac: [UInt8]; public var mtu: UInt32 }
    let socket: RouteSocket
    public private(set) var taps: [Tap] = []
    var redirected: [Link] = []
    let recordPath: String

    public static let recordName = "network"

    public init(socket: RouteSocket, stateDir: String) {
        self.socket = socket
        recordPath = stateDir + "/" + Self.recordName
    }

    public func connect(_ links: [Link]) throws(RuntimeError) {
        do {
            for (i, l) in links.enumerated() {
                let name = "tap\(i)_kata"
                let fd = kata_tap_open(name)
                if fd < 0 { throw NetlinkError("create tap \(name) for \(l.name)", code: errno) }
                taps.append(Tap(fd: fd, name: name, mac: l.mac, mtu: l.mtu))
                let tap = try socket.link(named: name)
                try socket.perform(.setLink(index: tap.index, up: true, mtu: l.mtu), "set \(name) up")
                // The interface's qdisc first: EEXIST here means another VM already has it.
                try socket.perform(.addIngressQdisc(index: l.index), "add ingress qdisc to \(l.name)")
                redirected.append(l)
                try record()
                try socket.perform(.addRedirectFilter(from: l.index, to: tap.index), "redirect \(l.name) to \(name)")
                try socket.perform(.addIngressQdisc(index: tap.index), "add ingress qdisc to \(name)")
                try socket.perform(.addRedirectFilter(from: tap.index, to: l.index), "redirect \(name) to \(l.name)")
            }
        } catch {
            undo()
            throw RuntimeError("network: \(error)")
        }
    }

    /// Closes the taps (QEMU must be gone or have its own copies, the built-in VMM stopped) and
    /// removes the redirects.
    public func undo() {
        for t in taps { close(t.fd) }
        taps.removeAll()
        Self.removeRedirects(socket, redirected.map { ($0.index, $0.name) })
        redirected.removeAll()
        unlink(recordPath)
    }

    /// The interfaces whose ingress we took, one "index name" per line, for whoever cleans up
    /// after a keeper that could not.
    func record() throws(NetlinkError) {
        let text = redirected.map { "\($0.index) \($0.name)\n" }.joined()
        do { try Posix.writeFileAtomic(recordPath, Array(text.utf8), mode: 0o600) }
        catch { throw NetlinkError("write \(recordPath)", code: error.errno) }
    }

    public static func readRecord(stateDir: String) -> [(index: Int32, name: String)] {
        guard let b = try? Posix.readFile(stateDir + "/" + recordName) else { return [] }
        return String(decoding: b, as: UTF8.self).split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 2, let i = Int32(f[0]) else { return nil }
            return (i, String(f[1]))
        }
    }

    /// Whether this host can connect container interfaces to a VM: in a new network namespace
    /// (the calling thread stays there: call it last, from a short-lived process such as
    /// `check`), a tap, an ingress qdisc and a u32+mirred redirect, as `connect` makes them.
    public static func probe() -> (ok: Bool, detail: String) {
        guard kata_unshare(0x4000_0000) == 0 else { return (false, "unshare a network namespace: \(String(cString: strerror(errno)))") }
        let fd = kata_tap_open("tap0_kata")
        if fd < 0 { return (false, "/dev/net/tun: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        do {
            let s = try RouteSocket()
            let tap = try s.link(named: "tap0_kata"), lo = try s.link(named: "lo")
            try s.perform(.addIngressQdisc(index: tap.index), "ingress qdisc (sch_ingress)")
            try s.perform(.addRedirectFilter(from: tap.index, to: lo.index), "u32 filter with a mirred redirect (cls_u32, act_mirred)")
        } catch { return (false, error.description) }
        return (true, "tap, ingress qdisc, u32 + mirred redirect")
    }

    /// For `delete` after a keeper and face that were both killed: undoes what the record in
    /// `stateDir` lists, inside the namespace at `path` (a namespace we created died with them).
    public static func cleanUp(stateDir: String, namespacePath path: String?) {
        let recorded = readRecord(stateDir: stateDir)
        guard !recorded.isEmpty, let path else { return }
        try? NetworkNamespace.within(path) {
            if let s = try? RouteSocket() { removeRedirects(s, recorded) }
        }
    }

    /// Deletes the ingress qdisc (and so the redirect) of each recorded interface that still
    /// has that index and name; a vanished interface needs nothing.
    public static func removeRedirects(_ s: RouteSocket, _ recorded: [(index: Int32, name: String)]) {
        guard !recorded.isEmpty, let links = try? s.links() else { return }
        for (index, name) in recorded where links.contains(where: { $0.index == index && $0.name == name }) {
            try? s.perform(.deleteIngressQdisc(index: index), "remove ingress qdisc of \(name)")
        }
    }
}
