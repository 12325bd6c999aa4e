/// Numbers from linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h, pkt_sched.h, pkt_cls.h
/// and tc_act/tc_mirred.h (uapi, so stable).
public enum NL {
    // nlmsghdr flags and types
    public static let request: UInt16 = 0x1
    public static let ack: UInt16 = 0x4
    public static let dump: UInt16 = 0x300
    public static let replace: UInt16 = 0x100
    public static let excl: UInt16 = 0x200
    public static let create: UInt16 = 0x400
    public static let nested: UInt16 = 0x8000
    public static let error: UInt16 = 2
    public static let done: UInt16 = 3

    // message types
    public static let newLink: UInt16 = 16, delLink: UInt16 = 17, getLink: UInt16 = 18
    public static let newAddr: UInt16 = 20, getAddr: UInt16 = 22
    public static let newRoute: UInt16 = 24, getRoute: UInt16 = 26
    public static let newQdisc: UInt16 = 36, delQdisc: UInt16 = 37
    public static let newFilter: UInt16 = 44

    // families
    public static let inet: UInt8 = 2, inet6: UInt8 = 10

    // IFLA_*
    public static let iflaAddress: UInt16 = 1, iflaIfname: UInt16 = 3, iflaMTU: UInt16 = 4
    public static let iflaLinkinfo: UInt16 = 18, iflaNetNSFD: UInt16 = 28
    public static let iflaInfoKind: UInt16 = 1
    // ifi_flags
    public static let iffUp: UInt32 = 0x1, iffLoopback: UInt32 = 0x8
    public static let arphrdEther: UInt16 = 1

    // IFA_*
    public static let ifaAddress: UInt16 = 1, ifaLocal: UInt16 = 2, ifaBroadcast: UInt16 = 4, ifaFlags: UInt16 = 8
    public static let ifaNoDAD: UInt32 = 0x02

    // RTA_*, rtm_* values
    public static let rtaDst: UInt16 = 1, rtaOif: UInt16 = 4, rtaGateway: UInt16 = 5
    public static let rtaPriority: UInt16 = 6, rtaPrefsrc: UInt16 = 7, rtaMultipath: UInt16 = 9, rtaTable: UInt16 = 15
    public static let tableMain: UInt8 = 254
    public static let protoKernel: UInt8 = 2, protoBoot: UInt8 = 3
    public static let scopeUniverse: UInt8 = 0, scopeLink: UInt8 = 253
    public static let typeUnicast: UInt8 = 1

    // traffic control
    public static let tcaKind: UInt16 = 1, tcaOptions: UInt16 = 2
    /// TC_H_INGRESS: the parent of an ingress qdisc; its handle is ffff:.
    public static let ingressParent: UInt32 = 0xffff_fff1
    public static let ingressHandle: UInt32 = 0xffff_0000
    public static let u32Sel: UInt16 = 5, u32Act: UInt16 = 7
    public static let u32Terminal: UInt8 = 1
    public static let actKind: UInt16 = 1, actOptions: UInt16 = 2
    public static let mirredParms: UInt16 = 2
    public static let egressRedirect: Int32 = 1
    /// TC_ACT_STOLEN: the packet is consumed by the redirect.
    public static let actStolen: Int32 = 4
    /// ETH_P_ALL in network byte order, as tcm_info's low 16 bits want it.
    public static let protocolAllBE: UInt32 = 0x0300
}
