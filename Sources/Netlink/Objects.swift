/// Links, addresses and routes as the kernel reports them in dumps.
public struct Link: Equatable, Sendable {
    public var index: Int32
    public var name: String
    /// ARPHRD_* (1 is Ethernet).
    public var hardwareType: UInt16
    public var flags: UInt32
    public var mtu: UInt32
    public var mac: [UInt8]
    /// IFLA_INFO_KIND: "veth", "tun", "bridge", ...; nil for physical devices.
    public var kind: String?

    public var isUp: Bool { flags & NL.iffUp != 0 }
    public var isLoopback: Bool { flags & NL.iffLoopback != 0 }

    /// Parses an RTM_NEWLINK message; nil when it is too short.
    public init?(_ m: NetlinkReply) {
        let p = m.payload
        guard m.type == NL.newLink, p.count >= 16 else { return nil }
        let s = p.startIndex
        hardwareType = le16(p, s + 2)
        index = Int32(bitPattern: le32(p, s + 4))
        flags = le32(p, s + 8)
        let a = Attributes(p.dropFirst(16))
        name = a.string(NL.iflaIfname) ?? ""
        mtu = a.u32(NL.iflaMTU) ?? 0
        mac = a.bytes(NL.iflaAddress) ?? []
        kind = a.nested(NL.iflaLinkinfo)?.string(NL.iflaInfoKind)
    }

    public init(index: Int32, name: String, hardwareType: UInt16 = NL.arphrdEther, flags: UInt32 = 0, mtu: UInt32 = 1500,
                mac: [UInt8] = [], kind: String? = nil) {
        self.index = index; self.name = name; self.hardwareType = hardwareType; self.flags = flags
        self.mtu = mtu; self.mac = mac; self.kind = kind
    }
}

public struct Address: Equatable, Sendable {
    public var index: Int32
    public var address: [UInt8]
    public var prefix: UInt8
    public var scope: UInt8

    public init?(_ m: NetlinkReply) {
        let p = m.payload
        guard m.type == NL.newAddr, p.count >= 8 else { return nil }
        let s = p.startIndex
        prefix = p[s + 1]
        scope = p[s + 3]
        index = Int32(bitPattern: le32(p, s + 4))
        let a = Attributes(p.dropFirst(8))
        // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on point-to-point links).
        guard let addr = a.bytes(NL.ifaLocal) ?? a.bytes(NL.ifaAddress), addr.count == 4 || addr.count == 16 else { return nil }
        address = addr
    }

    public init(index: Int32, address: [UInt8], prefix: UInt8, scope: UInt8 = 0) {
        self.index = index; self.address = address; self.prefix = prefix; self.scope = scope
    }
}

public struct Route: Equatable, Sendable {
    public var inet6: Bool
    public var destination: [UInt8]
    public var prefix: UInt8
    public var table: UInt32
    public var proto: UInt8
    public var scope: UInt8
    public var type: UInt8
    public var gateway: [UInt8]
    public var oif: Int32
    public var source: [UInt8]
    public var metric: UInt32
    /// Routes over several next hops (RTA_MULTIPATH) are reported but not reproduced.
    public var multipath: Bool

    public init?(_ m: NetlinkReply) {
        let p = m.payload
        guard m.type == NL.newRoute, p.count >= 12 else { return nil }
        let s = p.startIndex
        inet6 = p[s] == NL.inet6
        prefix = p[s + 1]
        proto = p[s + 5]; scope = p[s + 6]; type = p[s + 7]
        let a = Attributes(p.dropFirst(12))
        table = a.u32(NL.rtaTable) ?? UInt32(p[s + 4])
        destination = a.bytes(NL.rtaDst) ?? []
        gateway = a.bytes(NL.rtaGateway) ?? []
        oif = a.u32(NL.rtaOif).map { Int32(bitPattern: $0) } ?? 0
        source = a.bytes(NL.rtaPrefsrc) ?? []
        metric = a.u32(NL.rtaPriority) ?? 0
        multipath = a[NL.rtaMultipath] != nil
    }

    public init(inet6: Bool = false, destination: [UInt8] = [], prefix: UInt8 = 0, table: UInt32 = UInt32(NL.tableMain),
                proto: UInt8 = NL.protoBoot, scope: UInt8 = NL.scopeUniverse, type: UInt8 = NL.typeUnicast,
                gateway: [UInt8] = [], oif: Int32, source: [UInt8] = [], metric: UInt32 = 0, multipath: Bool = false) {
        self.inet6 = inet6; self.destination = destination; self.prefix = prefix; self.table = table; self.proto = proto
        self.scope = scope; self.type = type; self.gateway = gateway; self.oif = oif; self.source = source
        self.metric = metric; self.multipath = multipath
    }
}
