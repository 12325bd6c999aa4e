/// The container's network as the host found it in the container's network namespace,
/// sent with `create` so the guest can give its virtio-net devices the same identity.
public struct NetworkConfig: Equatable, Sendable {
    public var interfaces: [NetInterface]
    public var routes: [NetRoute]
    public init(interfaces: [NetInterface] = [], routes: [NetRoute] = []) { self.interfaces = interfaces; self.routes = routes }
    public var isEmpty: Bool { interfaces.isEmpty && routes.isEmpty }
}

/// An address with its prefix length: 4 bytes for IPv4, 16 for IPv6.
public struct IPPrefix: Equatable, Sendable, CustomStringConvertible {
    public var address: [UInt8]
    public var prefix: UInt8
    public init(_ address: [UInt8], prefix: UInt8) { self.address = address; self.prefix = prefix }
    public var isIPv6: Bool { address.count == 16 }
    public var description: String { IPText.format(address) + "/\(prefix)" }
}

/// One interface: the guest device with `mac` is renamed `name` and configured.
public struct NetInterface: Equatable, Sendable {
    public var name: String
    public var mac: [UInt8]
    public var mtu: UInt32
    public var addresses: [IPPrefix]
    public init(name: String, mac: [UInt8], mtu: UInt32, addresses: [IPPrefix]) {
        self.name = name; self.mac = mac; self.mtu = mtu; self.addresses = addresses
    }
}

/// A route of the main table through one of the interfaces.
public struct NetRoute: Equatable, Sendable, CustomStringConvertible {
    public var inet6: Bool
    /// nil: the default route.
    public var destination: IPPrefix?
    /// Empty for routes to directly connected hosts.
    public var gateway: [UInt8]
    public var device: String
    /// Preferred source address; empty when none.
    public var source: [UInt8]
    /// RT_SCOPE_* (253 link, 0 universe).
    public var scope: UInt8
    public var metric: UInt32
    public init(inet6: Bool, destination: IPPrefix?, gateway: [UInt8], device: String, source: [UInt8] = [],
                scope: UInt8, metric: UInt32 = 0) {
        self.inet6 = inet6; self.destination = destination; self.gateway = gateway; self.device = device
        self.source = source; self.scope = scope; self.metric = metric
    }
    public var description: String {
        (destination.map { $0.description } ?? "default") + (gateway.isEmpty ? "" : " via " + IPText.format(gateway)) + " dev " + device
    }
}

extension NetworkConfig {
    func encode(into w: inout WireWriter) {
        w.u32(UInt32(interfaces.count))
        for i in interfaces {
            w.string(i.name); w.blob(i.mac); w.u32(i.mtu)
            w.u32(UInt32(i.addresses.count))
            for a in i.addresses { w.blob(a.address); w.u8(a.prefix) }
        }
        w.u32(UInt32(routes.count))
        for r in routes {
            w.bool(r.inet6)
            w.bool(r.destination != nil)
            if let d = r.destination { w.blob(d.address); w.u8(d.prefix) }
            w.blob(r.gateway); w.string(r.device); w.blob(r.source); w.u8(r.scope); w.u32(r.metric)
        }
    }

    /// Decodes and checks the shape: names a kernel would accept, 6-byte MACs, addresses of
    /// their family's length, prefixes within it. A bad peer gets an error, never a crash.
    static func decode(_ r: inout WireReader) throws(WireError) -> NetworkConfig {
        var c = NetworkConfig()
        let n = Int(try r.u32())
        guard n <= r.remaining / 16 else { throw WireError("interface count \(n) exceeds message size") }
        for _ in 0..<n {
            let name = try r.string(), mac = try r.blob(), mtu = try r.u32()
            try checkName(name)
            guard mac.count == 6 else { throw WireError("interface \(name): MAC of \(mac.count) bytes") }
            guard mtu >= 68 && mtu <= 65535 else { throw WireError("interface \(name): MTU \(mtu) out of range") }
            let k = Int(try r.u32())
            guard k <= r.remaining / 5 else { throw WireError("address count \(k) exceeds message size") }
            var addrs: [IPPrefix] = []
            for _ in 0..<k { addrs.append(try prefix(try r.blob(), try r.u8(), inet6: nil)) }
            c.interfaces.append(NetInterface(name: name, mac: mac, mtu: mtu, addresses: addrs))
        }
        let m = Int(try r.u32())
        guard m <= r.remaining / 16 else { throw WireError("route count \(m) exceeds message size") }
        for _ in 0..<m {
            let inet6 = try r.bool()
            let dest: IPPrefix? = try r.bool() ? try prefix(try r.blob(), try r.u8(), inet6: inet6) : nil
            let gw = try r.blob(), dev = try r.string(), src = try r.blob(), scope = try r.u8(), metric = try r.u32()
            for a in [gw, src] where !a.isEmpty && a.count != (inet6 ? 16 : 4) {
                throw WireError("route via \(dev): address of \(a.count) bytes")
            }
            try checkName(dev)
            c.routes.append(NetRoute(inet6: inet6, destination: dest, gateway: gw, device: dev, source: src, scope: scope, metric: metric))
        }
        return c
    }

    static func prefix(_ a: [UInt8], _ p: UInt8, inet6: Bool?) throws(WireError) -> IPPrefix {
        guard a.count == 4 || a.count == 16, inet6 == nil || inet6 == (a.count == 16) else {
            throw WireError("address of \(a.count) bytes")
        }
        guard Int(p) <= a.count * 8 else { throw WireError("prefix /\(p) too long for \(IPText.format(a))") }
        return IPPrefix(a, prefix: p)
    }

    /// Linux interface names: 1 to 15 bytes, no '/', ':' or whitespace, not "." or "..".
    static func checkName(_ n: String) throws(WireError) {
        let b = Array(n.utf8)
        guard !b.isEmpty, b.count < 16, n != ".", n != "..",
              !b.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 32 || $0 == 127 }) else {
            throw WireError("bad interface name \"\(n)\"")
        }
    }
}

/// Text forms of addresses, for messages and logs.
public enum IPText {
    public static func format(_ a: [UInt8]) -> String {
        if a.count == 4 { return a.map { String($0) }.joined(separator: ".") }
        guard a.count == 16 else { return "<\(a.count)-byte address>" }
        let groups = stride(from: 0, to: 16, by: 2).map { Int(a[$0]) << 8 | Int(a[$0 + 1]) }
        // Compress the longest run of two or more zero groups, as inet_ntop does.
        var best = (start: -1, len: 0), cur = (start: -1, len: 0)
        for (i, g) in groups.enumerated() {
            if g == 0 { cur = cur.start < 0 ? (i, 1) : (cur.start, cur.len + 1); if cur.len > best.len { best = cur } }
            else { cur = (-1, 0) }
        }
        let hex = groups.map { String($0, radix: 16) }
        if best.len < 2 { return hex.joined(separator: ":") }
        let head = hex[..<best.start].joined(separator: ":"), tail = hex[(best.start + best.len)...].joined(separator: ":")
        return head + "::" + tail
    }

    public static func mac(_ m: [UInt8]) -> String {
        m.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}
