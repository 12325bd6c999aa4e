import Agent
import Foundation
@testable import HostRuntime
import Netlink
import TestSupport
import XCTest

/// Which interfaces, addresses and routes of a namespace the VM gets.
final class NetworkScanTests: XCTestCase {
    let mac: [UInt8] = [2, 0x42, 0xac, 0x11, 0, 2]
    let linkLocal: [UInt8] = [0xfe, 0x80] + [UInt8](repeating: 0, count: 13) + [1]
    let global6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]

    func testSelectsEthernetLinksTheirAddressesAndTheirRoutes() {
        let links = [
            Link(index: 1, name: "lo", hardwareType: 772, flags: NL.iffLoopback | NL.iffUp, mtu: 65536),
            Link(index: 2, name: "eth0", flags: NL.iffUp, mtu: 1450, mac: mac, kind: "veth"),
            Link(index: 3, name: "wg0", hardwareType: 65534, flags: NL.iffUp, mtu: 1420, kind: "wireguard"),
            Link(index: 4, name: "mytap", flags: NL.iffUp, mac: [2, 0, 0, 0, 0, 9], kind: "tun"),
        ]
        let addrs = [
            Address(index: 1, address: [127, 0, 0, 1], prefix: 8, scope: 254),
            Address(index: 2, address: [172, 17, 0, 2], prefix: 16),
            Address(index: 2, address: linkLocal, prefix: 64, scope: 253),
            Address(index: 2, address: global6, prefix: 64),
            Address(index: 3, address: [10, 9, 0, 1], prefix: 24),
        ]
        let routes = [
            Route(gateway: [172, 17, 0, 1], oif: 2),
            Route(destination: [172, 17, 0, 0], prefix: 16, proto: NL.protoKernel, scope: NL.scopeLink, oif: 2),
            Route(destination: [172, 17, 0, 2], prefix: 32, table: 255, type: 2, oif: 2),
            Route(destination: [10, 10, 0, 0], prefix: 16, gateway: [172, 17, 0, 1], oif: 2, metric: 5),
            Route(destination: [10, 9, 0, 0], prefix: 16, oif: 3),
            Route(destination: [10, 11, 0, 0], prefix: 16, oif: 2, multipath: true),
            Route(inet6: true, gateway: linkLocal, oif: 2),
        ]
        let s = NetworkScan.select(links: links, addresses: addrs, routes: routes)
        XCTAssertEqual(s.links.map(\.name), ["eth0"])
        XCTAssertEqual(s.config.interfaces, [NetInterface(name: "eth0", mac: mac, mtu: 1450,
                                                          addresses: [IPPrefix([172, 17, 0, 2], prefix: 16), IPPrefix(global6, prefix: 64)])])
        XCTAssertEqual(s.config.routes.map(\.description),
                       ["default via 172.17.0.1 dev eth0", "10.10.0.0/16 via 172.17.0.1 dev eth0", "default via fe80::1 dev eth0"])
        XCTAssertEqual(s.config.routes[1].metric, 5)
        XCTAssertTrue(s.config.routes[2].inet6)
        XCTAssertEqual(s.skipped.count, 3, "\(s.skipped)")
        XCTAssertTrue(s.skipped[0].contains("wg0 (wireguard)"))
        XCTAssertTrue(s.skipped[1].contains("mytap (tun)"))
        XCTAssertTrue(s.skipped[2].contains("multipath"))
        XCTAssertNil(s.sharedTap)
    }

    func testOnlyLoopbackMeansNoNetwork() {
        let s = NetworkScan.select(links: [Link(index: 1, name: "lo", hardwareType: 772, flags: NL.iffLoopback)], addresses: [], routes: [])
        XCTAssertEqual(s.config, NetworkConfig())
        XCTAssertEqual(s.skipped, [])
    }

    func testOurTapMarksANamespaceAnotherVMUses() {
        let s = NetworkScan.select(links: [Link(index: 2, name: "eth0", mac: mac, kind: "veth"),
                                           Link(index: 3, name: "tap0_kata", mac: [2, 0, 0, 0, 0, 1], kind: "tun")],
                                   addresses: [], routes: [])
        XCTAssertEqual(s.sharedTap, "tap0_kata")
    }
}

/// The tc-filter plumbing against the real kernel, inside throwaway network namespaces
/// (never the host's): a veth pair between namespace C (the container's) and P (the peer).
final class NetworkPlumbingTests: XCTestCase {
    var c = "", p = "", dir = ""

    override func setUpWithError() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root: network namespaces, taps and tc") }
        for t in ["/usr/sbin/ip", "/usr/sbin/tc"] where !FileManager.default.isExecutableFile(atPath: t) {
            throw XCTSkip("\(t) is missing (apt-get install iproute2)")
        }
        guard access("/dev/net/tun", R_OK | W_OK) == 0 else { throw XCTSkip("/dev/net/tun is not available") }
        c = "kata-nt-\(getpid())-c"; p = "kata-nt-\(getpid())-p"
        dir = makeTempDir("kata-net")
        for cmd in [["netns", "add", c], ["netns", "add", p],
                    ["-n", p, "link", "add", "vp", "type", "veth", "peer", "name", "eth0", "netns", c],
                    ["-n", c, "addr", "add", "10.77.0.2/24", "dev", "eth0"],
                    ["-n", c, "link", "set", "eth0", "mtu", "1400", "up"],
                    ["-n", c, "route", "add", "default", "via", "10.77.0.1"],
                    ["-n", p, "addr", "add", "10.77.0.1/24", "dev", "vp"],
                    ["-n", p, "link", "set", "vp", "mtu", "1400", "up"]] {
            let r = sh(["/usr/sbin/ip"] + cmd)
            guard r.status == 0 else { throw XCTSkip("ip \(cmd.joined(separator: " ")) failed: \(r.output)") }
        }
    }

    override func tearDown() {
        _ = sh(["/usr/sbin/ip", "netns", "del", c])
        _ = sh(["/usr/sbin/ip", "netns", "del", p])
        try? FileManager.default.removeItem(atPath: dir)
    }

    func sh(_ args: [String]) -> (status: Int32, output: String) {
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: args[0])
        proc.arguments = Array(args.dropFirst())
        let out = Pipe()
        proc.standardOutput = out; proc.standardError = out
        guard (try? proc.run()) != nil else { return (-1, "cannot run \(args[0])") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        proc.waitUntilExit()
        return (proc.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func counter(_ ns: String, _ dev: String, _ name: String) -> Int {
        Int(sh(["/usr/sbin/ip", "netns", "exec", ns, "cat", "/sys/class/net/\(dev)/statistics/\(name)"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Reads frames from the tap (each after a 10-byte virtio_net_hdr) until `match` accepts one.
    func readFrame(_ fd: Int32, seconds: Int, _ match: ([UInt8]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(TimeInterval(seconds))
        var buf = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 200) > 0 else { continue }
            let n = read(fd, &buf, buf.count)
            if n > 10 && match(Array(buf[10..<n])) { return true }
        }
        return false
    }

    func testConnectMirrorsBothWaysAndUndoLeavesTheNamespaceAsItWas() throws {
        let before = [sh(["/usr/sbin/ip", "-n", c, "-o", "link"]).output, sh(["/usr/sbin/tc", "-n", c, "qdisc", "show"]).output]
        var failure: String?
        try NetworkNamespace.within("/run/netns/" + c) {
            do {
                let socket = try RouteSocket()
                let scan = try NetworkScan.read(socket)
                XCTAssertEqual(scan.links.map(\.name), ["eth0"])
                XCTAssertEqual(scan.config.interfaces.first?.mtu, 1400)
                XCTAssertEqual(scan.config.interfaces.first?.addresses, [IPPrefix([10, 77, 0, 2], prefix: 24)])
                XCTAssertEqual(scan.config.routes.map(\.description), ["default via 10.77.0.1 dev eth0"])
                let plumbing = NetworkPlumbing(socket: socket, stateDir: dir)
                try plumbing.connect(scan.links)
                let eth0 = scan.links[0]
                XCTAssertEqual(NetworkPlumbing.readRecord(stateDir: dir).map(\.name), ["eth0"])

                let f1 = sh(["/usr/sbin/tc", "-n", c, "filter", "show", "dev", "eth0", "ingress"]).output
                XCTAssertTrue(f1.contains("Egress Redirect to device tap0_kata"), f1)
                XCTAssertTrue(f1.contains("match 00000000/00000000 at 0"), f1)
                let f2 = sh(["/usr/sbin/tc", "-n", c, "filter", "show", "dev", "tap0_kata", "ingress"]).output
                XCTAssertTrue(f2.contains("Egress Redirect to device eth0"), f2)
                let tap = sh(["/usr/sbin/ip", "-n", c, "-o", "link", "show", "tap0_kata"]).output
                XCTAssertTrue(tap.contains("mtu 1400") && tap.contains("UP"), tap)

                // Into the VM: P's ARP request for 10.77.0.2 arrives on eth0 and leaves through the tap.
                _ = sh(["/usr/sbin/ip", "netns", "exec", p, "/bin/busybox", "ping", "-c", "1", "-W", "1", "10.77.0.2"])
                let fd = plumbing.taps[0].fd
                XCTAssertTrue(readFrame(fd, seconds: 3) { f in
                    f.count >= 42 && f[12] == 0x08 && f[13] == 0x06 && Array(f[38..<42]) == [10, 77, 0, 2]
                }, "P's ARP request did not come out of the tap")

                // Out of the VM: a frame written to the tap leaves through eth0 and reaches P.
                let rx = counter(p, "vp", "rx_packets")
                let frame: [UInt8] = [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] + eth0.mac
                    + [0x88, 0xb5] + [UInt8](repeating: 0x5a, count: 46)
                XCTAssertEqual(frame.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }, frame.count)
                var got = rx
                for _ in 0..<40 where got <= rx { usleep(50_000); got = counter(p, "vp", "rx_packets") }
                XCTAssertGreaterThan(got, rx, "a frame written to the tap did not reach the peer")

                plumbing.undo()
            } catch { failure = "\(error)" }
        }
        XCTAssertNil(failure)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/network"), "record left behind")
        var after: [String] = []
        for _ in 0..<20 {  // the tap is unregistered as its last fd closes
            after = [sh(["/usr/sbin/ip", "-n", c, "-o", "link"]).output, sh(["/usr/sbin/tc", "-n", c, "qdisc", "show"]).output]
            if after == before { break }
            usleep(50_000)
        }
        XCTAssertEqual(after, before)
    }

    func testSecondConnectOfTheSameInterfaceFailsAndLeavesTheFirstIntact() throws {
        var failure: String?
        try NetworkNamespace.within("/run/netns/" + c) {
            do {
                let socket = try RouteSocket()
                let links = try NetworkScan.read(socket).links
                let first = NetworkPlumbing(socket: socket, stateDir: dir)
                try first.connect(links)
                let other = makeTempDir("kata-net2")
                defer { try? FileManager.default.removeItem(atPath: other) }
                let again = try NetworkScan.read(socket)
                XCTAssertEqual(again.sharedTap, "tap0_kata", "a keeper sees the namespace is taken")
                let second = NetworkPlumbing(socket: socket, stateDir: other)
                XCTAssertThrowsError(try second.connect(links)) { XCTAssertTrue("\($0)".hasPrefix("network: "), "\($0)") }
                let f = sh(["/usr/sbin/tc", "-n", c, "filter", "show", "dev", "eth0", "ingress"]).output
                XCTAssertTrue(f.contains("Egress Redirect to device tap0_kata"), "the first VM's redirect must survive: \(f)")
                first.undo()
            } catch { failure = "\(error)" }
        }
        XCTAssertNil(failure)
    }

    func testFaceStyleCleanUpFromTheRecordAfterTheKeeperDied() throws {
        var failure: String?
        try NetworkNamespace.within("/run/netns/" + c) {
            do {
                let socket = try RouteSocket()
                let plumbing = NetworkPlumbing(socket: socket, stateDir: dir)
                try plumbing.connect(try NetworkScan.read(socket).links)
                for t in plumbing.taps { close(t.fd) }  // what a SIGKILL does to the keeper's fds
            } catch { failure = "\(error)" }
        }
        XCTAssertNil(failure)
        XCTAssertTrue(sh(["/usr/sbin/tc", "-n", c, "qdisc", "show", "dev", "eth0"]).output.contains("ingress"))
        NetworkPlumbing.cleanUp(stateDir: dir, namespacePath: "/run/netns/" + c)
        XCTAssertFalse(sh(["/usr/sbin/tc", "-n", c, "qdisc", "show", "dev", "eth0"]).output.contains("ingress"))
        XCTAssertNotEqual(sh(["/usr/sbin/ip", "-n", c, "link", "show", "tap0_kata"]).status, 0, "the tap outlived its fds")
    }

    func testRefusesTheRuntimesOwnNamespace() {
        XCTAssertThrowsError(try NetworkNamespace.join("/proc/self/ns/net")) {
            XCTAssertTrue("\($0)".contains("is the runtime's own"), "\($0)")
        }
        XCTAssertThrowsError(try NetworkNamespace.join("/proc/self/ns/mnt")) {
            XCTAssertTrue("\($0)".contains("not a network namespace"), "\($0)")
        }
        XCTAssertThrowsError(try NetworkNamespace.join(dir + "/missing")) {
            XCTAssertTrue("\($0)".contains("No such file"), "\($0)")
        }
    }
}
