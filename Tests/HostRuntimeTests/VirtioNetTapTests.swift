import Foundation
@testable import HostRuntime
import Netlink
import VMM
import XCTest

/// The built-in VMM's virtio-net on the tap `NetworkPlumbing` makes, against the real kernel:
/// namespace P pings the container's address 10.77.0.2 through the veth, the tc redirects and
/// the tap; a synthetic guest (a virtio driver over plain memory, answering ARP and ICMP echo for
/// 10.77.0.2 with the interface's MAC) sits behind the device, which the I/O thread serves.
extension NetworkPlumbingTests {
    func testVirtioNetOnThePlumbedTapAnswersThePeersPing() throws {
        var failure: String?
        var ping = (status: Int32(-1), output: "")
        var answered = (arp: 0, echo: 0)
        try NetworkNamespace.within("/run/netns/" + c) {
            do {
                let socket = try RouteSocket()
                let scan = try NetworkScan.read(socket)
                let plumbing = NetworkPlumbing(socket: socket, stateDir: dir)
                try plumbing.connect(scan.links)
                defer { plumbing.undo() }
                let tap = plumbing.taps[0]
                try TapBridge.prepareTap(tap.fd)
                let guest = try SyntheticNetGuest(fd: tap.fd, mac: tap.mac, mtu: UInt16(tap.mtu), ip: [10, 77, 0, 2])
                defer { guest.stop() }
                XCTAssertEqual(guest.negotiatedMTU, 1400, "the interface's MTU is offered")
                let responder = Thread { guest.serve() }
                responder.start()
                ping = sh(["/usr/sbin/ip", "netns", "exec", p, "/bin/busybox", "ping", "-c", "3", "-W", "2", "10.77.0.2"])
                answered = guest.finish()
            } catch { failure = "\(error)" }
        }
        XCTAssertNil(failure)
        XCTAssertEqual(ping.status, 0, ping.output)
        XCTAssertTrue(ping.output.contains("3 packets transmitted, 3 packets received"), ping.output)
        XCTAssertGreaterThanOrEqual(answered.arp, 1)
        XCTAssertEqual(answered.echo, 3)
        print("virtio-net on a tap, ping through veth + tc + tap + device + synthetic guest: "
              + (ping.output.split(separator: "\n").last.map(String.init) ?? ""))
    }
}

/// A guest's side of one virtio-net device, in plain memory: it drives the virtio-mmio registers
/// as Linux would (VERSION_1 + MAC + MTU, receive buffers posted up front and re-posted as they
/// are used) and answers ARP requests and ICMP echo requests for `ip`.
final class SyntheticNetGuest: @unchecked Sendable {
    let memory: GuestMemory
    let device: VirtioNet
    let transport: VirtioMMIOTransport
    let io: IOThread
    let bridge: TapBridge
    let mac: [UInt8], ip: [UInt8]
    let size: UInt16 = 8
    var rxAvail: UInt16 = 0, rxSeen: UInt16 = 0, txAvail: UInt16 = 0
    let done = NSCondition()
    var stopping = false, finished = false
    var arpAnswered = 0, echoAnswered = 0

    func ring(_ q: Int) -> (desc: UInt64, avail: UInt64, used: UInt64) {
        let base = UInt64(q + 1) * 0x10000
        return (base, base + 0x1000, base + 0x2000)
    }
    func rxBuffer(_ i: UInt16) -> UInt64 { 0x4_0000 + UInt64(i) * 0x1000 }
    let txBuffer: UInt64 = 0x6_0000

    init(fd: Int32, mac: [UInt8], mtu: UInt16, ip: [UInt8]) throws {
        memory = try GuestMemory(size: 1 << 20)
        device = VirtioNet(fd: fd, mac: mac, mtu: mtu, queueSize: size)
        transport = VirtioMMIOTransport(device: device, memory: memory)
        self.mac = mac; self.ip = ip
        io = try IOThread()
        bridge = TapBridge(device: device, transport: transport, ioThread: io)
        set(0x070, 1); set(0x070, 3)
        set(0x014, 0); let features = reg(0x010)
        set(0x024, 0); set(0x020, features)   // take MAC, STATUS and MTU
        set(0x024, 1); set(0x020, 1)          // VERSION_1
        set(0x070, 3 | 8)
        for q in 0..<2 {
            let r = ring(q)
            set(0x030, UInt32(q)); set(0x038, UInt32(size))
            set(0x080, UInt32(r.desc)); set(0x090, UInt32(r.avail)); set(0x0a0, UInt32(r.used))
            set(0x044, 1)
        }
        set(0x070, 3 | 8 | 4)
        for i in 0..<size { try postReceive(i) }
        try io.start()
        set(0x050, 0)
    }

    var negotiatedMTU: Int {
        var v: UInt16 = 0
        withUnsafeMutableBytes(of: &v) { transport.read(offset: 0x10a, into: $0) }
        return Int(v)
    }

    func reg(_ off: UInt64) -> UInt32 {
        var v: UInt32 = 0
        withUnsafeMutableBytes(of: &v) { transport.read(offset: off, into: $0) }
        return v
    }
    func set(_ off: UInt64, _ v: UInt32) {
        var x = v
        withUnsafeBytes(of: &x) { transport.write(offset: off, from: $0) }
    }

    /// Descriptor i is receive buffer i (one 4 KiB device-writable buffer each).
    func postReceive(_ i: UInt16) throws {
        let r = ring(0)
        try memory.store(rxBuffer(i), at: r.desc + 16 * UInt64(i))
        try memory.store(UInt32(4096), at: r.desc + 16 * UInt64(i) + 8)
        try memory.store(UInt16(2), at: r.desc + 16 * UInt64(i) + 12)
        try memory.store(i, at: r.avail + 4 + 2 * UInt64(rxAvail % size))
        rxAvail &+= 1
        try memory.store(rxAvail, at: r.avail + 2)
    }

    func transmit(_ frame: [UInt8]) throws {
        let r = ring(1)
        try memory.write(txBuffer, [UInt8](repeating: 0, count: 12) + frame)
        try memory.store(txBuffer, at: r.desc)
        try memory.store(UInt32(12 + frame.count), at: r.desc + 8)
        try memory.store(UInt16(0), at: r.desc + 12)
        try memory.store(UInt16(0), at: r.avail + 4 + 2 * UInt64(txAvail % size))
        txAvail &+= 1
        try memory.store(txAvail, at: r.avail + 2)
        set(0x050, 1)   // served at once, on this thread, under the transport's lock
    }

    /// Answers frames until `finish()`.
    func serve() {
        let r = ring(0)
        while true {
            done.lock()
            if stopping { finished = true; done.broadcast(); done.unlock(); return }
            done.unlock()
            guard let usedIdx: UInt16 = try? memory.load(r.used + 2), usedIdx != rxSeen else { usleep(1000); continue }
            let elem = r.used + 4 + 8 * UInt64(rxSeen % size)
            rxSeen &+= 1
            guard let id: UInt32 = try? memory.load(elem), let length: UInt32 = try? memory.load(elem + 4),
                  id < UInt32(size), length >= 12,
                  let bytes = try? memory.read(rxBuffer(UInt16(id)), count: Int(length)) else { continue }
            let header = Array(bytes[0..<12]), frame = Array(bytes[12...])
            if header != [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0] { continue }   // not what the device promises
            if let reply = answer(frame) { try? transmit(reply) }
            try? postReceive(UInt16(id))
            set(0x050, 0)
        }
    }

    func answer(_ f: [UInt8]) -> [UInt8]? {
        guard f.count >= 42 else { return nil }
        let src = Array(f[6..<12])
        if f[12] == 0x08, f[13] == 0x06, f[20] == 0, f[21] == 1, Array(f[38..<42]) == ip {
            arpAnswered += 1
            return src + mac + [0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2] + mac + ip + Array(f[22..<28]) + Array(f[28..<32])
        }
        let ihl = Int(f[14] & 0x0f) * 4
        if f[12] == 0x08, f[13] == 0x00, f[23] == 1, Array(f[30..<34]) == ip, f.count >= 14 + ihl + 8, f[14 + ihl] == 8 {
            var ipHeader = Array(f[14..<14 + ihl])
            ipHeader.replaceSubrange(12..<20, with: Array(f[30..<34]) + Array(f[26..<30]))
            ipHeader[8] = 64
            ipHeader[10] = 0; ipHeader[11] = 0
            let ipSum = Self.checksum(ipHeader)
            ipHeader[10] = UInt8(ipSum >> 8); ipHeader[11] = UInt8(ipSum & 0xff)
            let total = Int(f[16]) << 8 | Int(f[17])
            var icmp = Array(f[14 + ihl..<min(f.count, 14 + total)])
            icmp[0] = 0; icmp[2] = 0; icmp[3] = 0
            let icmpSum = Self.checksum(icmp)
            icmp[2] = UInt8(icmpSum >> 8); icmp[3] = UInt8(icmpSum & 0xff)
            echoAnswered += 1
            return src + mac + [0x08, 0x00] + ipHeader + icmp
        }
        return nil
    }

    static func checksum(_ b: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var i = 0
        while i + 1 < b.count { sum += UInt32(b[i]) << 8 | UInt32(b[i + 1]); i += 2 }
        if i < b.count { sum += UInt32(b[i]) << 8 }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }

    /// Stops serving; returns how many ARP and echo requests were answered.
    func finish() -> (arp: Int, echo: Int) {
        done.lock()
        stopping = true
        while !finished { done.wait() }
        done.unlock()
        return (arpAnswered, echoAnswered)
    }

    func stop() {
        io.stop()
        _ = bridge
    }
}
