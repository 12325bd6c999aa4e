import CShims
import Foundation
import XCTest

/// Container networking end to end, without an engine: a veth whose container end sits in a
/// network namespace (as CNI/netavark leave it, or as docker's hook puts it) reaches the VM
/// through a tap and tc redirects. Everything happens in throwaway namespaces: C (the
/// container's) and P (the peer's, standing for the bridge side); the host's network is
/// never touched.
final class NetworkTests: XCTestCase {
    var h: Harness!
    var c = "", p = ""
    var ids: [String] = []
    var servers: [Process] = []
    static let tools = ["ip", "ping", "nc", "httpd", "mkdir", "printf"]

    override func setUpWithError() throws {
        try Harness.requireVMs()
        for t in ["/usr/sbin/ip", "/usr/sbin/tc", "/usr/bin/nsenter"] where !FileManager.default.isExecutableFile(atPath: t) {
            throw XCTSkip("\(t) is missing (iproute2, util-linux)")
        }
        guard access("/dev/net/tun", R_OK | W_OK) == 0 else { throw XCTSkip("/dev/net/tun is not available") }
        h = try Harness()
        _ = kata_set_child_subreaper()
        let tag = String(UUID().uuidString.prefix(6)).lowercased()
        c = "kata-e2e-\(tag)-c"; p = "kata-e2e-\(tag)-p"
    }

    override func tearDown() {
        for s in servers where s.isRunning { s.terminate(); s.waitUntilExit() }
        if let h {
            for id in ids { _ = try? h.run(["delete", "--force", id]) }
            h.assertClean()
        }
        _ = sh("/usr/sbin/ip", "netns", "del", c)
        _ = sh("/usr/sbin/ip", "netns", "del", p)
    }

    @discardableResult
    func sh(_ args: String...) -> Harness.Result { sh(args) }

    func sh(_ args: [String]) -> Harness.Result {
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: args[0])
        proc.arguments = Array(args.dropFirst())
        let out = Pipe(), err = Pipe()
        proc.standardOutput = out; proc.standardError = err
        proc.standardInput = FileHandle.nullDevice
        guard (try? proc.run()) != nil else { return Harness.Result(status: -1, stdout: "", stderr: "cannot run \(args[0])") }
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        proc.waitUntilExit()
        return Harness.Result(status: proc.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func ip(_ args: String...) throws {
        let r = sh(["/usr/sbin/ip"] + args)
        guard r.status == 0 else { throw XCTSkip("ip \(args.joined(separator: " ")) failed: \(r.stderr)") }
    }

    /// C holds eth0 (10.88.7.2/24, MTU 1400, default via P), P holds its peer vp (10.88.7.1/24).
    func makeNamespaces(mtu: Int = 1400) throws {
        try ip("netns", "add", c)
        try ip("netns", "add", p)
        try ip("-n", p, "link", "add", "vp", "mtu", String(mtu), "type", "veth", "peer", "name", "eth0", "mtu", String(mtu), "netns", c)
        try ip("-n", c, "addr", "add", "10.88.7.2/24", "dev", "eth0")
        try ip("-n", c, "link", "set", "eth0", "up")
        try ip("-n", c, "route", "add", "default", "via", "10.88.7.1")
        try ip("-n", p, "addr", "add", "10.88.7.1/24", "dev", "vp")
        try ip("-n", p, "link", "set", "vp", "up")
    }

    /// What a user would compare before and after: links, addresses, routes, qdiscs and filters.
    func snapshot(_ ns: String) -> [String] {
        // IPv6 duplicate detection ends on its own schedule: "tentative" is not our doing.
        [["-o", "link"], ["-o", "addr"], ["route"]].map { sh(["/usr/sbin/ip", "-n", ns] + $0).stdout.replacingOccurrences(of: "tentative ", with: "") }
            + [sh("/usr/sbin/tc", "-n", ns, "qdisc", "show").stdout, sh("/usr/sbin/tc", "-n", ns, "filter", "show", "dev", "eth0", "ingress").stdout]
    }

    /// Polls until `ns` looks as in `before` (a tap is unregistered as QEMU's last fd closes).
    func assertRestored(_ ns: String, _ before: [String], file: StaticString = #filePath, line: UInt = #line) {
        var now: [String] = []
        for _ in 0..<100 {
            now = snapshot(ns)
            if now == before { return }
            usleep(50_000)
        }
        XCTAssertEqual(now, before, "namespace \(ns) not restored", file: file, line: line)
    }

    func bundle(_ name: String, args: [String], netns: String?, hooks: [String: Any]? = nil) throws -> String {
        let b = try h.bundle(name, args: args) { config in
            if var linux = config["linux"] as? [String: Any], var ns = linux["namespaces"] as? [[String: Any]] {
                if let netns, let i = ns.firstIndex(where: { ($0["type"] as? String) == "network" }) { ns[i]["path"] = netns }
                linux["namespaces"] = ns
                config["linux"] = linux
            }
            if let hooks { config["hooks"] = hooks }
            // ping needs CAP_NET_RAW, as in docker's default set; without a capabilities
            // object the container has none (runc's rule, applied in the guest).
            if var process = config["process"] as? [String: Any] {
                let caps = ["CAP_NET_RAW", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                process["capabilities"] = ["bounding": caps, "effective": caps, "permitted": caps]
                config["process"] = process
            }
        }
        for t in Self.tools { try? FileManager.default.createSymbolicLink(atPath: b + "/rootfs/bin/" + t, withDestinationPath: "busybox") }
        return b
    }

    func startDetached(_ id: String, _ bundle: String) throws {
        ids.append(id)
        let r = try h.runDetached(["run", "-d", "--bundle", bundle, id], name: id)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    func exec(_ id: String, _ cmd: String) throws -> Harness.Result { try h.run(["exec", id, "sh", "-c", cmd]) }

    /// `busybox httpd` serving `text` as / from namespace `ns`, until tearDown.
    func serve(in ns: String, port: Int, text: String) throws {
        let www = h.work + "/www-\(ns)"
        try FileManager.default.createDirectory(atPath: www, withIntermediateDirectories: true)
        try text.write(toFile: www + "/index.html", atomically: true, encoding: .utf8)
        let s = Process()
        s.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        s.arguments = ["netns", "exec", ns, "/bin/busybox", "httpd", "-f", "-p", String(port), "-h", www]
        s.standardOutput = FileHandle.nullDevice; s.standardError = FileHandle.nullDevice
        try s.run()
        servers.append(s)
        usleep(200_000)
    }

    func testContainerGetsTheNamespacesInterfaceAndTalksBothWays() throws {
        try makeNamespaces()
        let before = snapshot(c)
        let mac = try XCTUnwrap(sh("/usr/sbin/ip", "-n", c, "-o", "link", "show", "eth0").stdout
            .components(separatedBy: "link/ether ").dropFirst().first?.split(separator: " ").first.map(String.init))
        let b = try bundle("b1", args: ["sh", "-c", "mkdir -p /www && echo guest-page > /www/index.html && exec httpd -f -p 8080 -h /www"],
                           netns: "/run/netns/" + c)
        try startDetached("net1", b)

        let links = try exec("net1", "ip -o link")
        XCTAssertEqual(links.stdout.split(separator: "\n").map { $0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces) }, ["lo", "eth0"],
                       links.stdout + links.stderr)
        let addr = try exec("net1", "ip -o -4 addr show eth0").stdout
        XCTAssertTrue(addr.contains("inet 10.88.7.2/24 brd 10.88.7.255"), addr)
        let route = try exec("net1", "ip route").stdout
        XCTAssertTrue(route.contains("default via 10.88.7.1 dev eth0"), route)
        XCTAssertTrue(route.contains("10.88.7.0/24 dev eth0"), route)
        XCTAssertEqual(try exec("net1", "cat /sys/class/net/eth0/mtu").stdout, "1400\n")
        XCTAssertEqual(try exec("net1", "cat /sys/class/net/eth0/address").stdout, mac + "\n", "the guest has the veth's MAC")

        // The host side took the veth's ingress, in the container's namespace only.
        let filter = sh("/usr/sbin/tc", "-n", c, "filter", "show", "dev", "eth0", "ingress").stdout
        XCTAssertTrue(filter.contains("Egress Redirect to device tap0_kata"), filter)

        // ICMP both ways, one of them a full-MTU packet (1372 + 28 = 1400).
        let out = try exec("net1", "ping -c 2 -W 5 10.88.7.1")
        XCTAssertEqual(out.status, 0, out.stdout + out.stderr)
        let inbound = sh("/usr/sbin/ip", "netns", "exec", p, "/bin/busybox", "ping", "-c", "2", "-W", "5", "-s", "1372", "10.88.7.2")
        XCTAssertEqual(inbound.status, 0, inbound.stdout + inbound.stderr)
        // TCP both ways: the peer fetches the container's page, the container fetches the peer's
        // (HTTP over busybox nc: Debian's static busybox wget crashes in glibc's NSS code).
        var page = Harness.Result(status: -1, stdout: "", stderr: "")
        for _ in 0..<20 where !page.stdout.contains("guest-page") {  // httpd may still be starting
            page = sh("/bin/sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /usr/sbin/ip netns exec \(p) /bin/busybox nc -w 10 10.88.7.2 8080")
            if !page.stdout.contains("guest-page") { usleep(250_000) }
        }
        XCTAssertTrue(page.stdout.hasPrefix("HTTP/1.") && page.stdout.hasSuffix("\r\n\r\nguest-page\n"), page.stdout + page.stderr)
        try serve(in: p, port: 9090, text: "peer-page\n")
        let fetched = try exec("net1", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 10.88.7.1 9090")
        XCTAssertTrue(fetched.stdout.hasSuffix("\r\n\r\npeer-page\n"), fetched.stdout + fetched.stderr)

        XCTAssertEqual(try h.run(["delete", "--force", "net1"]).status, 0)
        ids.removeAll()
        assertRestored(c, before)
    }

    func testWithoutAPathTheContainerHasOnlyLoopbackAndTheHostIsUntouched() throws {
        let host = ["-br link", "-br addr", "route"].map { sh(["/usr/sbin/ip"] + $0.split(separator: " ").map(String.init)).stdout }
        let b = try bundle("b2", args: ["sh", "-c", "ip -o link; ip -o -4 addr"], netns: nil)
        let r = try h.run(["run", "--bundle", b, "net2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, r.stdout)
        XCTAssertTrue(lines.first?.contains(": lo: <LOOPBACK,UP") ?? false, r.stdout)
        XCTAssertTrue(lines.last?.contains("inet 127.0.0.1/8") ?? false, r.stdout)
        XCTAssertFalse(sh("/usr/sbin/ip", "-o", "link").stdout.contains("_kata"), "a tap in the host's namespace")
        XCTAssertEqual(["-br link", "-br addr", "route"].map { sh(["/usr/sbin/ip"] + $0.split(separator: " ").map(String.init)).stdout }, host)

        // docker --network host names the daemon's own namespace: the container gets a new one
        // (a VM cannot share the host's network), never the host's interfaces.
        let own = try bundle("b2h", args: ["sh", "-c", "ip -o link; ip -o -4 addr"], netns: "/proc/self/ns/net")
        let log = h.work + "/own.log"
        let r2 = try h.run(["run", "--bundle", own, "net2h"], globals: ["--log", log])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertEqual(r2.stdout.split(separator: "\n").count, 2, r2.stdout)
        XCTAssertTrue(h.read(log).contains("is the runtime's own (the host's): the container gets a new one with only lo"), h.read(log))
        XCTAssertFalse(sh("/usr/sbin/ip", "-o", "link").stdout.contains("_kata"), "a tap in the host's namespace")
        XCTAssertEqual(["-br link", "-br addr", "route"].map { sh(["/usr/sbin/ip"] + $0.split(separator: " ").map(String.init)).stdout }, host)
    }

    /// As docker's libnetwork-setkey does: the prestart hook moves a veth into the network
    /// namespace of the state's pid and configures it there; the container then has it.
    func testPrestartHookConfiguresTheNamespaceOfTheStatePID() throws {
        try ip("netns", "add", p)
        try ip("-n", p, "link", "add", "vp", "type", "veth", "peer", "name", "vc")
        try ip("-n", p, "addr", "add", "10.88.9.1/24", "dev", "vp")
        try ip("-n", p, "link", "set", "vp", "up")
        let hook = h.work + "/setkey.sh"
        try """
        #!/bin/sh
        pid=$(sed -n 's/.*"pid": *\\([0-9]*\\).*/\\1/p')
        [ -n "$pid" ] || exit 3
        readlink /proc/$pid/ns/net > \(h.work)/hook-netns
        /usr/sbin/ip -n \(p) link set vc netns "$pid" || exit 4
        /usr/bin/nsenter --net=/proc/$pid/ns/net /bin/sh -c 'ip=/usr/sbin/ip; $ip link set vc name eth0 && $ip addr add 10.88.9.2/24 dev eth0 && $ip link set eth0 up && $ip route add default via 10.88.9.1' || exit 5
        """.write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        let b = try bundle("b3", args: ["sleep", "1000"], netns: nil, hooks: ["prestart": [["path": hook]]])
        try startDetached("net3", b)

        let facePID = try XCTUnwrap((try h.stateJSON("net3")["pid"] as? NSNumber)?.intValue)
        let hostNet = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        XCTAssertNotEqual(h.read(h.work + "/hook-netns").trimmingCharacters(in: .whitespacesAndNewlines), hostNet,
                          "the hook was given the host's network namespace")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(facePID)/ns/net") + "\n", h.read(h.work + "/hook-netns"))
        let addr = try exec("net3", "ip -o -4 addr show eth0").stdout
        XCTAssertTrue(addr.contains("inet 10.88.9.2/24"), addr)
        XCTAssertTrue(try exec("net3", "ip route").stdout.contains("default via 10.88.9.1 dev eth0"))
        let ping = sh("/usr/sbin/ip", "netns", "exec", p, "/bin/busybox", "ping", "-c", "1", "-W", "5", "10.88.9.2")
        XCTAssertEqual(ping.status, 0, ping.stdout + ping.stderr)

        XCTAssertEqual(try h.run(["delete", "--force", "net3"]).status, 0)
        ids.removeAll()
        // Our namespace died with the face, and the veth pair with it.
        var gone = false
        for _ in 0..<100 where !gone { gone = sh("/usr/sbin/ip", "-n", p, "link", "show", "vp").status != 0; if !gone { usleep(50_000) } }
        XCTAssertTrue(gone, "the veth outlived the container's namespace")
    }

    func testKilledKeeperLeavesNoTapOrRedirect() throws {
        try makeNamespaces()
        let before = snapshot(c)
        let b = try bundle("b4", args: ["sleep", "1000"], netns: "/run/netns/" + c)
        try startDetached("net4", b)
        XCTAssertTrue(sh("/usr/sbin/tc", "-n", c, "qdisc", "show", "dev", "eth0").stdout.contains("ingress"))
        let face = try XCTUnwrap((try h.stateJSON("net4")["pid"] as? NSNumber)?.intValue)
        // The face's children: the keeper and the stand-in for `podman top` (named like the init).
        let children = h.read("/proc/\(face)/task/\(face)/children").split(separator: " ").compactMap { Int32($0) }
        let keepers = children.filter { h.read("/proc/\($0)/cmdline").contains("keeper") }
        XCTAssertEqual(keepers.count, 1, "the face has one keeper: \(children)")
        for k in keepers { kill(k, SIGKILL) }
        assertRestored(c, before)  // the face removes the redirect, the taps die with their fds
        XCTAssertEqual(try h.run(["delete", "--force", "net4"]).status, 0)
        ids.removeAll()
        assertRestored(c, before)
    }

    func testDeleteCleansUpAfterFaceAndKeeperWereBothKilled() throws {
        try makeNamespaces()
        let before = snapshot(c)
        let b = try bundle("b8", args: ["sleep", "1000"], netns: "/run/netns/" + c)
        try startDetached("net8", b)
        let face = try XCTUnwrap((try h.stateJSON("net8")["pid"] as? NSNumber)?.intValue)
        kill(pid_t(face), SIGKILL)  // the keeper follows (PDEATHSIG); nobody is left to undo the redirect
        var leftover = false
        for _ in 0..<100 {
            leftover = sh("/usr/sbin/tc", "-n", c, "qdisc", "show", "dev", "eth0").stdout.contains("ingress")
            if h.leftoverProcesses().isEmpty { break }
            usleep(50_000)
        }
        XCTAssertTrue(leftover, "expected the veth's redirect to outlive a SIGKILLed face and keeper")
        XCTAssertEqual(try h.run(["delete", "--force", "net8"]).status, 0)
        ids.removeAll()
        assertRestored(c, before)
    }

    func testCreateFailuresLeaveTheNamespaceAsItWas() throws {
        try makeNamespaces()
        let before = snapshot(c)
        let b = try bundle("b5", args: ["true"], netns: "/run/netns/" + c)
        // QEMU fails after the taps and redirects exist.
        let cfg = h.work + "/false-qemu.toml"
        var text = Harness.startConfig.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? "[hypervisor]\n"
        text = text.split(separator: "\n").filter { !$0.hasPrefix("qemu_path") }.joined(separator: "\n")
            .replacingOccurrences(of: "[hypervisor]", with: "[hypervisor]\nqemu_path = \"/bin/false\"")
        try text.write(toFile: cfg, atomically: true, encoding: .utf8)
        let r = try h.run(["run", "--bundle", b, "net5"], environment: ["KATA_CONFIG": cfg])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("qemu exited during boot"), r.stderr)
        assertRestored(c, before)

        // The built-in VMM takes the taps too; when it fails after they exist (a file that is no
        // kernel, so the same on every host; on PVM it refuses to boot even before), the namespace
        // is restored the same way.
        let badKernel = h.work + "/not-a-kernel"
        try "hello\n".write(toFile: badKernel, atomically: true, encoding: .utf8)
        let builtinCfg = h.work + "/bad-kernel.toml"
        text = text.split(separator: "\n").filter { !$0.hasPrefix("qemu_path") && !$0.hasPrefix("kernel =") }.joined(separator: "\n")
            .replacingOccurrences(of: "[hypervisor]\n", with: "[hypervisor]\nkernel = \"\(badKernel)\"\n")
        try text.write(toFile: builtinCfg, atomically: true, encoding: .utf8)
        let builtin = try h.run(["run", "--bundle", b, "net6"], environment: ["KATA_CONFIG": builtinCfg, "KATA_HYPERVISOR": "builtin"])
        XCTAssertNotEqual(builtin.status, 0)
        XCTAssertTrue(builtin.stderr.contains("builtin") || builtin.stderr.contains("built-in"), builtin.stderr)
        XCTAssertFalse(builtin.stderr.contains("virtio-net"), builtin.stderr)
        assertRestored(c, before)

        // Paths that are not a network namespace.
        for (path, words) in [(h.work, "not a network namespace"), (h.work + "/none", "No such file or directory")] {
            let bad = try bundle("b-\(words.count)", args: ["true"], netns: path)
            let e = try h.run(["run", "--bundle", bad, "net7"])
            XCTAssertNotEqual(e.status, 0)
            XCTAssertTrue(e.stderr.contains(words), e.stderr)
            XCTAssertEqual(e.stderr.split(separator: "\n").count, 1, "one line: \(e.stderr)")
        }
    }
}
