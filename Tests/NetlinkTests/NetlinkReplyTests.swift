import Netlink
import XCTest

/// Reading the kernel's replies: message splitting, attributes, links, addresses, routes, errors.
final class NetlinkReplyTests: XCTestCase {
    /// A reply message built the way the kernel lays one out.
    func message(type: UInt16, flags: UInt16 = 0, seq: UInt32 = 1, fixed: [UInt8], attrs: [(UInt16, [UInt8])]) -> [UInt8] {
        var body = fixed
        for (t, d) in attrs {
            body += u16(UInt16(4 + d.count)) + u16(t) + d
            while body.count % 4 != 0 { body.append(0) }
        }
        return u32(UInt32(16 + body.count)) + u16(type) + u16(flags) + u32(seq) + u32(0) + body
    }
    func u16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    func i32(_ v: Int32) -> [UInt8] { u32(UInt32(bitPattern: v)) }

    func testLinkFromNewLinkMessage() throws {
        let info = u16(9) + u16(1) + Array("veth".utf8) + [0] + [0, 0, 0]  // IFLA_INFO_KIND, padded
        let m = message(type: 16, fixed: [0, 0] + u16(1) + i32(12) + u32(0x1003) + u32(0),
                        attrs: [(3, Array("eth0".utf8) + [0]), (4, u32(1450)), (1, [2, 0x42, 0xac, 0x11, 0, 2]), (18 | 0x8000, info)])
        let r = try NetlinkReply.split(m)
        XCTAssertEqual(r.count, 1)
        let l = try XCTUnwrap(Link(r[0]))
        XCTAssertEqual(l.index, 12)
        XCTAssertEqual(l.name, "eth0")
        XCTAssertEqual(l.mtu, 1450)
        XCTAssertEqual(l.mac, [2, 0x42, 0xac, 0x11, 0, 2])
        XCTAssertEqual(l.kind, "veth")
        XCTAssertTrue(l.isUp)
        XCTAssertFalse(l.isLoopback)
        XCTAssertEqual(l.hardwareType, 1)
    }

    func testSeveralMessagesInOneDatagramAndDone() throws {
        let a = message(type: 16, seq: 5, fixed: [UInt8](repeating: 0, count: 16), attrs: [(3, Array("lo".utf8) + [0])])
        let b = message(type: 16, seq: 5, fixed: [UInt8](repeating: 0, count: 16), attrs: [(3, Array("eth0".utf8) + [0])])
        let done = message(type: 3, seq: 5, fixed: u32(0), attrs: [])
        let r = try NetlinkReply.split(a + b + done)
        XCTAssertEqual(r.map(\.type), [16, 16, 3])
        XCTAssertEqual(r.compactMap(Link.init).map(\.name), ["lo", "eth0"])
    }

    func testLengthPastTheEndIsAnError() {
        var m = message(type: 16, fixed: [UInt8](repeating: 0, count: 16), attrs: [])
        m[0] = 200
        XCTAssertThrowsError(try NetlinkReply.split(m))
        m[0] = 8  // shorter than a header
        XCTAssertThrowsError(try NetlinkReply.split(m))
    }

    func testAttributeRunningPastItsMessageIsIgnored() {
        let bad: [UInt8] = u16(40) + u16(3) + Array("eth0".utf8)
        let a = Attributes(bad[...])
        XCTAssertNil(a[3])
    }

    func testTooShortFixedPartGivesNoObject() throws {
        let m = message(type: 16, fixed: [0, 0, 0], attrs: [])
        XCTAssertNil(Link(try NetlinkReply.split(m)[0]))
        XCTAssertNil(Address(try NetlinkReply.split(message(type: 20, fixed: [2, 24], attrs: []))[0]))
    }

    func testAddressPrefersLocal() throws {
        let m = message(type: 20, fixed: [2, 24, 0, 0] + i32(4), attrs: [(1, [10, 0, 0, 1]), (2, [10, 0, 0, 2])])
        let a = try XCTUnwrap(Address(try NetlinkReply.split(m)[0]))
        XCTAssertEqual(a.address, [10, 0, 0, 2])
        XCTAssertEqual(a.prefix, 24)
        XCTAssertEqual(a.index, 4)
        let v6 = message(type: 20, fixed: [10, 64, 0, 253] + i32(4), attrs: [(1, [0xfe, 0x80] + [UInt8](repeating: 0, count: 13) + [1])])
        let b = try XCTUnwrap(Address(try NetlinkReply.split(v6)[0]))
        XCTAssertEqual(b.scope, 253)
        XCTAssertEqual(b.address.count, 16)
        let odd = message(type: 20, fixed: [2, 24, 0, 0] + i32(4), attrs: [(2, [10, 0, 0])])
        XCTAssertNil(Address(try NetlinkReply.split(odd)[0]), "an address of the wrong length is dropped")
    }

    func testRouteFields() throws {
        let m = message(type: 24, fixed: [2, 0, 0, 0, 254, 4, 0, 1] + u32(0),
                        attrs: [(15, u32(254)), (5, [172, 17, 0, 1]), (4, u32(7))])
        let r = try XCTUnwrap(Route(try NetlinkReply.split(m)[0]))
        XCTAssertFalse(r.inet6)
        XCTAssertEqual(r.destination, [])
        XCTAssertEqual(r.gateway, [172, 17, 0, 1])
        XCTAssertEqual(r.oif, 7)
        XCTAssertEqual(r.table, 254)
        XCTAssertEqual(r.proto, 4)
        XCTAssertFalse(r.multipath)
    }

    func testErrorWithExtendedAck() throws {
        // nlmsgerr: error -17, then the echoed request header (capped), then NLMSGERR_ATTR_MSG.
        let echoed = u32(36) + u16(36) + u16(0x605) + u32(1) + u32(0)
        let m = message(type: 2, flags: 0x100 | 0x200, fixed: i32(-17) + echoed, attrs: [(1, Array("Exclusivity flag on".utf8) + [0])])
        let r = try NetlinkReply.split(m)[0]
        let (code, text) = r.errorCode()
        XCTAssertEqual(code, 17)
        XCTAssertEqual(text, "Exclusivity flag on")
        let err = NetlinkError("add ingress qdisc to eth0", code: code, detail: text)
        XCTAssertEqual(err.description, "add ingress qdisc to eth0: File exists (Exclusivity flag on)")
    }

    func testPlainAck() throws {
        let m = message(type: 2, fixed: i32(0) + [UInt8](repeating: 0, count: 16), attrs: [])
        XCTAssertEqual(try NetlinkReply.split(m)[0].errorCode().code, 0)
    }
}
