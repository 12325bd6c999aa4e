#if canImport(Glibc)
import Glibc
#endif
import Agent
import Netlink

/// Gives the container the network the host found in its network namespace: each virtio-net
/// device (found by the MAC the host gave it) gets the host interface's name, its MTU,
/// addresses and routes. In the guest the VM's namespace is the container's, so the devices
/// stay where they are; when the container has a namespace of its own (the host-side tests)
/// they are moved into it. Runs in the container's child process, around its unshare.
struct GuestNetwork {
    let config: NetworkConfig
    /// Opened in the VM's own namespace before the unshare: that is where the devices are.
    let vmSocket: RouteSocket

    init?(_ config: NetworkConfig) throws(SetupError) {
        guard !config.interfaces.isEmpty else { return nil }
        self.config = config
        do { vmSocket = try RouteSocket() } catch { throw SetupError("network: \(error)") }
    }

    /// `newNamespace`: the process has unshared CLONE_NEWNET since `init`.
    func configure(newNamespace: Bool) throws(SetupError) {
        do { try apply(newNamespace: newNamespace) } catch { throw SetupError("network: \(error)") }
    }

    func apply(newNamespace: Bool) throws(NetlinkError) {
        GuestInit.trace("network: configuring \(config.interfaces.count) interface(s)")
        let devices = try vmSocket.links()
        var nsFD: Int32 = -1
        if newNamespace {
            nsFD = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)
            if nsFD < 0 { throw NetlinkError("open /proc/self/ns/net", code: errno) }
        }
        defer { if nsFD >= 0 { close(nsFD) } }
        for i in config.interfaces {
            guard let dev = devices.first(where: { $0.mac == i.mac && !$0.isLoopback }) else {
                throw NetlinkError("no virtio-net device with MAC \(IPText.mac(i.mac)) for \(i.name)", code: ENODEV)
            }
            if newNamespace {
                try vmSocket.perform(.setLink(index: dev.index, name: i.name, netnsFD: nsFD), "move \(dev.name) into the container as \(i.name)")
            } else if dev.name != i.name {
                try vmSocket.perform(.setLink(index: dev.index, name: i.name), "rename \(dev.name) to \(i.name)")
            }
        }
        GuestInit.trace("network: devices moved")
        let s = newNamespace ? try RouteSocket() : vmSocket
        let links = try s.links()
        var index: [String: Int32] = [:]
        for i in config.interfaces {
            guard let l = links.first(where: { $0.name == i.name }) else { throw NetlinkError("find \(i.name)", code: ENODEV) }
            index[i.name] = l.index
            try s.perform(.setLink(index: l.index, up: true, mtu: i.mtu), "set \(i.name) up with MTU \(i.mtu)")
            for a in i.addresses {
                try s.perform(.addAddress(index: l.index, address: a.address, prefix: a.prefix), "add address \(a) to \(i.name)")
            }
        }
        GuestInit.trace("network: links up, addresses added")
        // Routes to directly connected networks first: gateways must be reachable when theirs are added.
        for r in config.routes.sorted(by: { $0.gateway.isEmpty && !$1.gateway.isEmpty }) {
            guard let oif = index[r.device] else { throw NetlinkError("route \(r): unknown device", code: ENODEV) }
            try s.perform(.addRoute(destination: r.destination?.address ?? [], prefix: r.destination?.prefix ?? 0,
                                    gateway: r.gateway, oif: oif, source: r.source, scope: r.scope, metric: r.metric,
                                    inet6: r.inet6), "add route \(r)")
        }
        GuestInit.trace("network: routes added")
    }
}
