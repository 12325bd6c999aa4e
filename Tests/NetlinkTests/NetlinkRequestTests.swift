import Netlink
import XCTest

/// The bytes of the requests kata-runtime sends, checked field by field against the uapi
/// layouts (netlink(7), rtnetlink(7), pkt_cls.h, tc_mirred.h).
final class NetlinkRequestTests: XCTestCase {
    func le32(_ b: [UInt8], _ i: Int) -> UInt32 { UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24 }
    func le16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }

    func testHeaderCarriesLengthTypeFlagsAndSequence() {
        let b = NetlinkRequest.setLink(index: 7, up: true, mtu: 1400).finish(seq: 42)
        XCTAssertEqual(b.count, 16 + 16 + 8)
        XCTAssertEqual(le32(b, 0), UInt32(b.count))
        XCTAssertEqual(le16(b, 4), 16)  // RTM_NEWLINK
        XCTAssertEqual(le16(b, 6), 0x5)  // NLM_F_REQUEST | NLM_F_ACK
        XCTAssertEqual(le32(b, 8), 42)
        XCTAssertEqual(le32(b, 12), 0)
        // ifinfomsg: family, pad, type, index 7, flags IFF_UP, change IFF_UP
        XCTAssertEqual(Array(b[16..<20]), [0, 0, 0, 0])
        XCTAssertEqual(le32(b, 20), 7)
        XCTAssertEqual(le32(b, 24), 1)
        XCTAssertEqual(le32(b, 28), 1)
        // IFLA_MTU
        XCTAssertEqual(le16(b, 32), 8); XCTAssertEqual(le16(b, 34), 4); XCTAssertEqual(le32(b, 36), 1400)
    }

    func testSetLinkWithoutUpLeavesTheFlagsAlone() {
        let b = NetlinkRequest.setLink(index: 3, name: "eth0", netnsFD: 9).finish(seq: 1)
        XCTAssertEqual(le32(b, 24), 0)
        XCTAssertEqual(le32(b, 28), 0, "ifi_change 0: the up/down state is not touched")
        let a = Attributes(b[32...])
        XCTAssertEqual(a.string(3), "eth0")
        XCTAssertEqual(a[3]?.last, 0, "IFLA_IFNAME is NUL-terminated")
        XCTAssertEqual(a.u32(28), 9)  // IFLA_NET_NS_FD
    }

    func testAddIPv4AddressSetsLocalAddressAndBroadcast() {
        let b = NetlinkRequest.addAddress(index: 5, address: [10, 1, 2, 3], prefix: 20).finish(seq: 1)
        XCTAssertEqual(le16(b, 4), 20)  // RTM_NEWADDR
        XCTAssertEqual(le16(b, 6), 0x1 | 0x4 | 0x400 | 0x200)  // REQUEST ACK CREATE EXCL
        XCTAssertEqual(Array(b[16..<20]), [2, 20, 0, 0])  // AF_INET, /20, flags, scope
        XCTAssertEqual(le32(b, 20), 5)
        let a = Attributes(b[24...])
        XCTAssertEqual(a.bytes(2), [10, 1, 2, 3])  // IFA_LOCAL
        XCTAssertEqual(a.bytes(1), [10, 1, 2, 3])  // IFA_ADDRESS
        XCTAssertEqual(a.bytes(4), [10, 1, 15, 255])  // IFA_BROADCAST
        XCTAssertNil(a[8])
    }

    func testAddIPv6AddressSkipsDuplicateDetectionAndHasNoBroadcast() {
        let addr: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]
        let b = NetlinkRequest.addAddress(index: 5, address: addr, prefix: 64).finish(seq: 1)
        XCTAssertEqual(b[16], 10)  // AF_INET6
        let a = Attributes(b[24...])
        XCTAssertEqual(a.bytes(2), addr)
        XCTAssertNil(a[4])
        XCTAssertEqual(a.u32(8), 0x02)  // IFA_FLAGS = IFA_F_NODAD
    }

    func testBroadcastForEveryPrefixShape() {
        XCTAssertEqual(IPv4.broadcast([172, 17, 0, 2], prefix: 16), [172, 17, 255, 255])
        XCTAssertEqual(IPv4.broadcast([10, 0, 0, 9], prefix: 29), [10, 0, 0, 15])
        XCTAssertEqual(IPv4.broadcast([10, 0, 0, 9], prefix: 0), [255, 255, 255, 255])
        XCTAssertEqual(IPv4.broadcast([192, 168, 1, 1], prefix: 24), [192, 168, 1, 255])
        // /31 and /32 have no broadcast address: none is sent.
        let b = NetlinkRequest.addAddress(index: 1, address: [10, 0, 0, 1], prefix: 31).finish(seq: 1)
        XCTAssertNil(Attributes(b[24...])[4])
    }

    func testDefaultRouteViaGateway() {
        let b = NetlinkRequest.addRoute(destination: [], prefix: 0, gateway: [172, 17, 0, 1], oif: 4, scope: 0, inet6: false).finish(seq: 1)
        XCTAssertEqual(le16(b, 4), 24)  // RTM_NEWROUTE
        // rtmsg: AF_INET, dst_len 0, src_len, tos, table main, proto boot, scope universe, type unicast
        XCTAssertEqual(Array(b[16..<24]), [2, 0, 0, 0, 254, 3, 0, 1])
        let a = Attributes(b[28...])
        XCTAssertNil(a[1], "no RTA_DST for the default route")
        XCTAssertEqual(a.bytes(5), [172, 17, 0, 1])
        XCTAssertEqual(a.u32(4), 4)
    }

    func testLinkScopeRouteToANetwork() {
        let b = NetlinkRequest.addRoute(destination: [169, 254, 1, 1], prefix: 32, gateway: [], oif: 2,
                                        source: [10, 0, 0, 5], scope: 253, metric: 100, inet6: false).finish(seq: 1)
        XCTAssertEqual(b[17], 32)
        XCTAssertEqual(b[22], 253)
        let a = Attributes(b[28...])
        XCTAssertEqual(a.bytes(1), [169, 254, 1, 1])
        XCTAssertNil(a[5])
        XCTAssertEqual(a.bytes(7), [10, 0, 0, 5])
        XCTAssertEqual(a.u32(6), 100)
    }

    func testIngressQdiscAddAndDelete() {
        let add = NetlinkRequest.addIngressQdisc(index: 6).finish(seq: 1)
        XCTAssertEqual(le16(add, 4), 36)
        XCTAssertEqual(le32(add, 20), 6)
        XCTAssertEqual(le32(add, 24), 0xffff_0000)  // handle ffff:
        XCTAssertEqual(le32(add, 28), 0xffff_fff1)  // parent TC_H_INGRESS
        XCTAssertEqual(Attributes(add[36...]).string(1), "ingress")
        let del = NetlinkRequest.deleteIngressQdisc(index: 6).finish(seq: 2)
        XCTAssertEqual(le16(del, 4), 37)
        XCTAssertEqual(le16(del, 6), 0x5)
        XCTAssertEqual(del.count, 36, "a delete names the qdisc by parent and handle only")
    }

    /// tc filter add dev 3 parent ffff: protocol all prio 1 u32 match u32 0 0
    ///   action mirred egress redirect dev 9
    func testRedirectFilterLayout() throws {
        let b = NetlinkRequest.addRedirectFilter(from: 3, to: 9).finish(seq: 1)
        XCTAssertEqual(le16(b, 4), 44)  // RTM_NEWTFILTER
        XCTAssertEqual(b.count, 140)
        XCTAssertEqual(le32(b, 20), 3)
        XCTAssertEqual(le32(b, 24), 0, "handle chosen by the kernel")
        XCTAssertEqual(le32(b, 28), 0xffff_0000, "parent: the ingress qdisc")
        XCTAssertEqual(le32(b, 32), 0x0001_0300, "prio 1, protocol ETH_P_ALL in network order")
        let top = Attributes(b[36...])
        XCTAssertEqual(top.string(1), "u32")
        let opts = try XCTUnwrap(top.nested(2))
        let sel = try XCTUnwrap(opts.bytes(5))
        XCTAssertEqual(sel.count, 32, "tc_u32_sel (16 bytes) and one tc_u32_key (16 bytes)")
        XCTAssertEqual(sel[0], 1, "TC_U32_TERMINAL")
        XCTAssertEqual(sel[2], 1, "one key")
        XCTAssertEqual(sel[16..<32].allSatisfy { $0 == 0 }, true, "mask 0 value 0: matches every frame")
        let action = try XCTUnwrap(opts.nested(7)?.nested(1))
        XCTAssertEqual(action.string(1), "mirred")
        let parms = try XCTUnwrap(action.nested(2)?.bytes(2))
        XCTAssertEqual(parms.count, 28)
        XCTAssertEqual(le32(parms, 8), 4, "TC_ACT_STOLEN")
        XCTAssertEqual(le32(parms, 20), 1, "TCA_EGRESS_REDIR")
        XCTAssertEqual(le32(parms, 24), 9, "target ifindex")
        // Nested attributes carry NLA_F_NESTED, as the kernel's strict validation wants.
        XCTAssertEqual(le16(b, 36 + 8 + 2) & 0x8000, 0x8000)
    }

    func testDumpRequestsAskForEverything() {
        let l = NetlinkRequest.dumpLinks().finish(seq: 3)
        XCTAssertEqual(le16(l, 4), 18)
        XCTAssertEqual(le16(l, 6), 0x301)
        XCTAssertEqual(l.count, 32)
        XCTAssertEqual(NetlinkRequest.dumpAddresses(family: 0).finish(seq: 1).count, 24)
        XCTAssertEqual(NetlinkRequest.dumpRoutes(family: 0).finish(seq: 1).count, 28)
    }
}
