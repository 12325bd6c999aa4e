import XCTest
import TestSupport
#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import Netlink
@testable import Guest

/// The guest's network set-up, run on the host (it is just Linux): a forked child joins a
/// throwaway namespace G standing for the VM's, where a veth end plays the virtio-net device,
/// unshares its own network namespace as the container's child does, and configures it.
final class GuestNetworkTests: XCTestCase {
    var g = ""
    let mac: [UInt8] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x0a]

    override func setUpWithError() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root: network namespaces") }
        guard access("/usr/sbin/ip", X_OK) == 0 else { throw XCTSkip("/usr/sbin/ip is missing (apt-get install iproute2)") }
        g = "kata-gnt-\(getpid())"
        for cmd in ["netns add \(g)", "-n \(g) link add gv0 address 02:00:5e:10:00:0a type veth peer name gv1"] {
            guard system("/usr/sbin/ip " + cmd + " >/dev/null 2>&1") == 0 else { throw XCTSkip("ip \(cmd) failed") }
        }
    }

    override func tearDown() { _ = system("/usr/sbin/ip netns del \(g) >/dev/null 2>&1") }

    /// In a child: join G, then GuestNetwork around unshare(CLONE_NEWNET); prints what the new
    /// namespace holds, or the error.
    func configureInChild(_ config: NetworkConfig) -> String {
        runInChild { out in
            let fd = open("/run/netns/" + g, O_RDONLY | O_CLOEXEC)
            guard fd >= 0, kata_setns(fd, 0x4000_0000) == 0 else { emit(out, "setns failed"); return 1 }
            do {
                let net = try GuestNetwork(config)
                guard kata_unshare(0x4000_0000) == 0, kata_loopback_up() == 0 else { emit(out, "unshare failed"); return 1 }
                try net?.configure(newNamespace: true)
                let s = try RouteSocket()
                for l in try s.links() { emit(out, "link \(l.name) mtu \(l.mtu) up \(l.isUp) mac \(IPText.mac(l.mac))\n") }
                for a in try s.addresses() where a.address.count == 4 { emit(out, "addr \(IPText.format(a.address))/\(a.prefix)\n") }
                for r in try s.routes() where r.table == 254 && !r.inet6 {
                    emit(out, "route \(r.destination.isEmpty ? "default" : IPText.format(r.destination) + "/\(r.prefix)") via \(IPText.format(r.gateway))\n")
                }
                return 0
            } catch { emit(out, "error \(error)"); return 1 }
        }.output
    }

    func testDeviceMovesIntoTheNewNamespaceRenamedAndConfigured() {
        let out = configureInChild(NetworkConfig(
            interfaces: [NetInterface(name: "eth0", mac: mac, mtu: 1400, addresses: [IPPrefix([10, 66, 0, 2], prefix: 24)])],
            routes: [NetRoute(inet6: false, destination: nil, gateway: [10, 66, 0, 1], device: "eth0", scope: 0),
                     NetRoute(inet6: false, destination: IPPrefix([192, 168, 50, 0], prefix: 24), gateway: [10, 66, 0, 254],
                              device: "eth0", scope: 0)]))
        let lines = out.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("link lo mtu 65536 up true mac 00:00:00:00:00:00"), out)
        XCTAssertTrue(lines.contains("link eth0 mtu 1400 up true mac 02:00:5e:10:00:0a"), out)
        XCTAssertEqual(lines.filter { $0.hasPrefix("link ") }.count, 2, out)
        XCTAssertTrue(lines.contains("addr 10.66.0.2/24"), out)
        XCTAssertTrue(lines.contains("route default via 10.66.0.1"), out)
        XCTAssertTrue(lines.contains("route 192.168.50.0/24 via 10.66.0.254"), out)
        // The device left G (the VM's namespace) for the child's, which is gone now (the kernel
        // dismantles a namespace in the background): so is the pair.
        var gone = false
        for _ in 0..<100 where !gone {
            gone = system("/usr/sbin/ip -n \(g) link show gv1 >/dev/null 2>&1") != 0
            if !gone { usleep(20_000) }
        }
        XCTAssertTrue(gone, "the veth outlived the namespace it was moved into")
    }

    func testMissingDeviceIsANamedError() {
        let out = configureInChild(NetworkConfig(interfaces: [NetInterface(name: "eth0", mac: [2, 0, 0, 0, 0, 0x77], mtu: 1500, addresses: [])]))
        XCTAssertEqual(out, "error network: no virtio-net device with MAC 02:00:00:00:00:77 for eth0: No such device")
    }

    func testUnreachableGatewayIsANamedError() {
        let out = configureInChild(NetworkConfig(
            interfaces: [NetInterface(name: "eth0", mac: mac, mtu: 1500, addresses: [IPPrefix([10, 66, 0, 2], prefix: 24)])],
            routes: [NetRoute(inet6: false, destination: nil, gateway: [172, 31, 0, 1], device: "eth0", scope: 0)]))
        XCTAssertTrue(out.hasPrefix("error network: add route default via 172.31.0.1 dev eth0: "), out)
    }
}
