@testable import Agent
import XCTest

/// The interfaces and routes sent with create: round trip, and a hostile peer's bytes.
final class NetworkConfigTests: XCTestCase {
    static let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]
    static let sample = NetworkConfig(
        interfaces: [
            NetInterface(name: "eth0", mac: [2, 0x42, 0xac, 0x11, 0, 2], mtu: 1500,
                         addresses: [IPPrefix([172, 17, 0, 2], prefix: 16), IPPrefix(v6, prefix: 64)]),
            NetInterface(name: "net1", mac: [0x0a, 0, 0, 0, 0, 1], mtu: 9000, addresses: []),
        ],
        routes: [
            NetRoute(inet6: false, destination: nil, gateway: [172, 17, 0, 1], device: "eth0", scope: 0),
            NetRoute(inet6: false, destination: IPPrefix([169, 254, 1, 1], prefix: 32), gateway: [], device: "eth0",
                     source: [172, 17, 0, 2], scope: 253, metric: 10),
            NetRoute(inet6: true, destination: nil, gateway: [0xfe, 0x80] + [UInt8](repeating: 0, count: 13) + [1], device: "net1", scope: 0),
        ])

    func encode(_ c: NetworkConfig) -> [UInt8] { var w = WireWriter(); c.encode(into: &w); return w.bytes }
    func decode(_ b: [UInt8]) throws -> NetworkConfig { var r = WireReader(b); return try NetworkConfig.decode(&r) }

    func testRoundTrip() throws {
        XCTAssertEqual(try decode(encode(Self.sample)), Self.sample)
        XCTAssertEqual(try decode(encode(NetworkConfig())), NetworkConfig())
        XCTAssertEqual(encode(NetworkConfig()), [0, 0, 0, 0, 0, 0, 0, 0], "no network costs two counts")
    }

    func testEveryTruncationThrows() {
        let b = encode(Self.sample)
        for cut in 0..<b.count { XCTAssertThrowsError(try decode(Array(b[..<cut])), "cut at \(cut)") }
    }

    func testRejectsWhatTheGuestMustNotApply() {
        func bad(_ edit: (inout NetworkConfig) -> Void, _ words: String) {
            var c = Self.sample
            edit(&c)
            XCTAssertThrowsError(try decode(encode(c))) { XCTAssertTrue("\($0)".contains(words), "\($0)") }
        }
        bad({ $0.interfaces[0].name = "" }, "bad interface name")
        bad({ $0.interfaces[0].name = "a-very-long-name0" }, "bad interface name")
        bad({ $0.interfaces[0].name = "../x" }, "bad interface name")
        bad({ $0.interfaces[0].name = "eth 0" }, "bad interface name")
        bad({ $0.interfaces[0].mac = [1, 2, 3] }, "MAC of 3 bytes")
        bad({ $0.interfaces[0].mtu = 20 }, "MTU 20")
        bad({ $0.interfaces[0].addresses[0] = IPPrefix([10, 0, 0, 1], prefix: 33) }, "prefix /33")
        bad({ $0.interfaces[0].addresses[0] = IPPrefix([10, 0, 1], prefix: 8) }, "address of 3 bytes")
        bad({ $0.routes[0].gateway = Self.v6 }, "address of 16 bytes")
        bad({ $0.routes[1].destination = IPPrefix(Self.v6, prefix: 64) }, "address of 16 bytes")
        bad({ $0.routes[0].device = "a/b" }, "bad interface name")
    }

    func testHugeCountsAreRejectedBeforeAllocating() {
        var w = WireWriter(); w.u32(0x7fff_ffff)
        XCTAssertThrowsError(try decode(w.bytes)) { XCTAssertTrue("\($0)".contains("interface count"), "\($0)") }
        var r = WireWriter(); r.u32(0); r.u32(0x1000_0000)
        XCTAssertThrowsError(try decode(r.bytes)) { XCTAssertTrue("\($0)".contains("route count"), "\($0)") }
    }

    func testTextForms() {
        XCTAssertEqual(IPText.format([10, 0, 0, 1]), "10.0.0.1")
        XCTAssertEqual(IPText.format(Self.v6), "2001:db8::2")
        XCTAssertEqual(IPText.format([UInt8](repeating: 0, count: 16)), "::")
        XCTAssertEqual(IPText.format([0xfe, 0x80] + [UInt8](repeating: 0, count: 13) + [1]), "fe80::1")
        XCTAssertEqual(IPText.format([0, 1, 0, 0, 0, 2] + [UInt8](repeating: 0, count: 10)), "1:0:2::")
        XCTAssertEqual(IPText.mac([2, 0x42, 0xac, 0x11, 0, 2]), "02:42:ac:11:00:02")
        XCTAssertEqual(Self.sample.routes[0].description, "default via 172.17.0.1 dev eth0")
        XCTAssertEqual(Self.sample.routes[1].description, "169.254.1.1/32 dev eth0")
    }
}
