/// The requests kata-runtime sends, as pure functions so that their bytes can be tested.
extension NetlinkRequest {
    public static func dumpLinks() -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.getLink, flags: NL.dump)
        r.ifinfo()
        return r
    }

    public static func dumpAddresses(family: UInt8) -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.getAddr, flags: NL.dump)
        r.ifaddr(family: family, prefix: 0, index: 0)
        return r
    }

    public static func dumpRoutes(family: UInt8) -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.getRoute, flags: NL.dump)
        r.rtmsg(family: family)
        return r
    }

    /// Changes one link: up/down, MTU, name, or moves it into the namespace open as `netnsFD`
    /// (renamed there to `name` when given).
    public static func setLink(index: Int32, up: Bool? = nil, mtu: UInt32? = nil, name: String? = nil,
                               netnsFD: Int32? = nil) -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.newLink, flags: NL.ack)
        r.ifinfo(index: index, flags: up == true ? NL.iffUp : 0, change: up == nil ? 0 : NL.iffUp)
        if let mtu { r.attr(NL.iflaMTU, u32: mtu) }
        if let name { r.attr(NL.iflaIfname, string: name) }
        if let netnsFD { r.attr(NL.iflaNetNSFD, u32: UInt32(bitPattern: netnsFD)) }
        return r
    }

    public static func deleteLink(index: Int32) -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.delLink, flags: NL.ack)
        r.ifinfo(index: index)
        return r
    }

    /// `ip addr add ADDRESS/PREFIX [brd +] dev INDEX`; IPv6 without duplicate detection, because
    /// the address was already checked where it was assigned.
    public static func addAddress(index: Int32, address: [UInt8], prefix: UInt8) -> NetlinkRequest {
        let v4 = address.count == 4
        var r = NetlinkRequest(type: NL.newAddr, flags: NL.ack | NL.create | NL.excl)
        r.ifaddr(family: v4 ? NL.inet : NL.inet6, prefix: prefix, index: index)
        r.attr(NL.ifaLocal, address)
        r.attr(NL.ifaAddress, address)
        if v4 && prefix < 31 { r.attr(NL.ifaBroadcast, IPv4.broadcast(address, prefix: prefix)) }
        if !v4 { r.attr(NL.ifaFlags, u32: NL.ifaNoDAD) }
        return r
    }

    /// A main-table unicast route: `destination` empty means the default route.
    public static func addRoute(destination: [UInt8], prefix: UInt8, gateway: [UInt8], oif: Int32,
                                source: [UInt8] = [], scope: UInt8, metric: UInt32 = 0, inet6: Bool) -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.newRoute, flags: NL.ack | NL.create | NL.excl)
        r.rtmsg(family: inet6 ? NL.inet6 : NL.inet, dstLen: destination.isEmpty ? 0 : prefix, table: NL.tableMain,
                proto: NL.protoBoot, scope: scope, type: NL.typeUnicast)
        if !destination.isEmpty { r.attr(NL.rtaDst, destination) }
        if !gateway.isEmpty { r.attr(NL.rtaGateway, gateway) }
        if !source.isEmpty { r.attr(NL.rtaPrefsrc, source) }
        if metric != 0 { r.attr(NL.rtaPriority, u32: metric) }
        r.attr(NL.rtaOif, u32: UInt32(bitPattern: oif))
        return r
    }

    /// `tc qdisc add dev INDEX ingress`.
    public static func addIngressQdisc(index: Int32) -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.newQdisc, flags: NL.ack | NL.create | NL.excl)
        r.tcmsg(index: index, handle: NL.ingressHandle, parent: NL.ingressParent)
        r.attr(NL.tcaKind, string: "ingress")
        return r
    }

    /// `tc qdisc del dev INDEX ingress` (its filters go with it).
    public static func deleteIngressQdisc(index: Int32) -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.delQdisc, flags: NL.ack)
        r.tcmsg(index: index, handle: NL.ingressHandle, parent: NL.ingressParent)
        return r
    }

    /// `tc filter add dev FROM parent ffff: protocol all prio 1 u32 match u32 0 0
    ///  action mirred egress redirect dev TO`: every frame arriving on FROM leaves through TO.
    public static func addRedirectFilter(from: Int32, to: Int32) -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.newFilter, flags: NL.ack | NL.create | NL.excl)
        r.tcmsg(index: from, handle: 0, parent: NL.ingressHandle, info: 1 << 16 | NL.protocolAllBE)
        r.attr(NL.tcaKind, string: "u32")
        r.begin(NL.tcaOptions)
        // struct tc_u32_sel with one key that matches everything (mask 0, value 0).
        var sel: [UInt8] = [NL.u32Terminal, 0, 1, 0]  // flags, offshift, nkeys, pad
        sel += [UInt8](repeating: 0, count: 12)  // offmask, off, offoff, hoff, hmask
        sel += [UInt8](repeating: 0, count: 16)  // key: mask, val, off, offmask
        r.attr(NL.u32Sel, sel)
        r.begin(NL.u32Act)
        r.begin(1)  // first action
        r.attr(NL.actKind, string: "mirred")
        r.begin(NL.actOptions)
        // struct tc_mirred: index, capab, action, refcnt, bindcnt, eaction, ifindex.
        var parms: [UInt8] = []
        for v in [0, 0, NL.actStolen, 0, 0, NL.egressRedirect, to] as [Int32] {
            withUnsafeBytes(of: v.littleEndian) { parms += $0 }
        }
        r.attr(NL.mirredParms, parms)
        r.end(); r.end(); r.end(); r.end()
        return r
    }
}

public enum IPv4 {
    /// The directed broadcast address of `address/prefix`.
    public static func broadcast(_ address: [UInt8], prefix: UInt8) -> [UInt8] {
        (0..<4).map { i in
            let bits = max(0, min(8, Int(prefix) - i * 8))
            let hostMask = UInt8(truncatingIfNeeded: 0xff >> bits)
            return address[i] | hostMask
        }
    }
}
