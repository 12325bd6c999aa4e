#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import VMM

/// virtio-net behind the virtio-mmio transport over a synthetic guest memory (no KVM), with a
/// SOCK_SEQPACKET socketpair standing in for the tap: one end is the device's frame descriptor,
/// the test reads and writes frames (12-byte header + Ethernet frame) at the other.
final class VirtioNetTests: XCTestCase {
    let mac: [UInt8] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]
    var ends: [Int32] = [-1, -1]
    var net: VirtioNet!
    var d: VirtioDeviceTests.Driver!
    /// Next free descriptor per queue (chains are posted one after the other).
    var nextDesc = [UInt16](repeating: 0, count: 2)

    override func setUpWithError() throws {
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends), 0)
    }

    override func tearDown() {
        net = nil; d = nil
        for fd in ends where fd >= 0 { close(fd) }
    }

    var host: Int32 { ends[1] }

    func bringUp(mtu: UInt16 = 0) throws {
        net = VirtioNet(fd: ends[0], mac: mac, mtu: mtu, queueSize: 8)
        d = try VirtioDeviceTests.Driver(net)
        d.bringUp(queues: 2, featuresLow: UInt32(truncatingIfNeeded: net.offeredFeatures))
        XCTAssertEqual(d.reg(0x070) & 4, 4, "DRIVER_OK accepted")
    }

    /// Posts a chain of (address, length, writable) buffers on queue q without notifying.
    func post(_ q: Int, _ buffers: [(UInt64, UInt32, Bool)]) throws {
        let r = d.ring(q)
        let head = nextDesc[q]
        for (i, b) in buffers.enumerated() {
            let index = (head + UInt16(i)) % d.size
            let desc = r.desc + 16 * UInt64(index)
            try d.memory.store(b.0, at: desc); try d.memory.store(b.1, at: desc + 8)
            try d.memory.store(UInt16((i + 1 < buffers.count ? 1 : 0) | (b.2 ? 2 : 0)), at: desc + 12)
            try d.memory.store((index + 1) % d.size, at: desc + 14)
        }
        nextDesc[q] = (head + UInt16(buffers.count)) % d.size
        try d.memory.store(head, at: r.avail + 4 + 2 * UInt64(d.availIdx[q] % d.size))
        d.availIdx[q] &+= 1
        try d.memory.store(d.availIdx[q], at: r.avail + 2)
    }

    func notify(_ q: Int) { d.set(0x050, UInt32(q)) }

    func usedIdx(_ q: Int) throws -> UInt16 { try d.memory.load(d.ring(q).used + 2) }

    func usedLength(_ q: Int, _ i: UInt16) throws -> UInt32 {
        try d.memory.load(d.ring(q).used + 4 + 8 * UInt64(i % d.size) + 4)
    }

    /// An Ethernet frame from the host's side (broadcast, EtherType 0x88b5, payload bytes).
    func frame(_ fill: UInt8, payload: Int = 46) -> [UInt8] {
        [UInt8](repeating: 0xff, count: 6) + [0x02, 0, 0, 0, 0, 1] + [0x88, 0xb5] + [UInt8](repeating: fill, count: payload)
    }

    func hostSend(_ bytes: [UInt8]) {
        XCTAssertEqual(bytes.withUnsafeBytes { send(host, $0.baseAddress, $0.count, 0) }, bytes.count)
    }

    /// The next frame at the host end, nil if none arrives within `ms`.
    func hostReceive(ms: Int32 = 200) -> [UInt8]? {
        var p = pollfd(fd: host, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, ms) > 0 else { return nil }
        var buf = [UInt8](repeating: 0, count: 1 << 17)
        let n = recv(host, &buf, buf.count, 0)
        return n >= 0 ? Array(buf[0..<n]) : nil
    }

    func testIdentifiesAsANetworkCardWithTheInterfacesMAC() throws {
        try bringUp(mtu: 1400)
        XCTAssertEqual(d.reg(0x008), 1, "device ID 1 = network card")
        d.set(0x014, 0)
        let low = d.reg(0x010)
        d.set(0x014, 1)
        XCTAssertEqual(d.reg(0x010), 1, "VIRTIO_F_VERSION_1")
        XCTAssertEqual(low, 1 << 5 | 1 << 16 | 1 << 3, "MAC, STATUS and MTU; no checksum/GSO/mergeable-buffer offloads")
        var config: [UInt8] = []
        for i in 0..<12 {
            var b: UInt8 = 0
            withUnsafeMutableBytes(of: &b) { d.transport.read(offset: 0x100 + UInt64(i), into: $0) }
            config.append(b)
        }
        XCTAssertEqual(Array(config[0..<6]), mac)
        XCTAssertEqual(d.reg(0x106) & 0xffff, 1, "status: link up")
        XCTAssertEqual(d.reg(0x10a) & 0xffff, 1400, "mtu")
        // Without a known MTU the feature is not offered.
        let plain = VirtioNet(fd: ends[0], mac: mac)
        XCTAssertEqual(plain.offeredFeatures & VirtioNet.fMTU, 0)
    }

    func testTransmittedFrameReachesTheTapAfterAZeroHeader() throws {
        try bringUp()
        let f = frame(0x33)
        // The guest's header claims checksum offload it never negotiated: the tap gets zeros.
        var header = [UInt8](repeating: 0, count: 12)
        header[0] = 1; header[1] = 1; header[4] = 0x40
        try d.memory.write(0x8_0000, header + Array(f[0..<20]))
        try d.memory.write(0x8_1000, Array(f[20...]))
        try post(1, [(0x8_0000, 32, false), (0x8_1000, UInt32(f.count - 20), false)])
        notify(1)
        XCTAssertEqual(try usedIdx(1), 1)
        XCTAssertEqual(try usedLength(1, 0), 0, "transmit buffers come back with length 0")
        XCTAssertGreaterThan(d.interrupts, 0)
        XCTAssertEqual(hostReceive(), [UInt8](repeating: 0, count: 12) + f)
        XCTAssertEqual(net.counters.framesSent, 1)
    }

    func testReceivedFrameFillsABufferWithAV1Header() throws {
        try bringUp()
        let f = frame(0x44, payload: 100)
        var header = [UInt8](repeating: 0x77, count: 12)   // whatever the tap says
        header[1] = 0                                        // no GSO
        hostSend(header + f)
        XCTAssertEqual(net.pollEvents(), 0, "no receive buffers yet: the tap is not polled")
        try post(0, [(0x8_0000, 1526, true)])
        XCTAssertEqual(d.transport.lock.withLock { net.pollEvents() }, Int16(POLLIN))
        d.transport.lock.withLock { net.receive() }
        XCTAssertEqual(try usedIdx(0), 1)
        XCTAssertEqual(try usedLength(0, 0), UInt32(12 + f.count))
        let got = try d.memory.read(0x8_0000, count: 12 + f.count)
        XCTAssertEqual(Array(got[0..<12]), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], "zero header, num_buffers 1")
        XCTAssertEqual(Array(got[12...]), f)
        XCTAssertEqual(net.counters.framesReceived, 1)
        // A frame spread over a chain of several buffers.
        hostSend([UInt8](repeating: 0, count: 12) + f)
        try post(0, [(0x9_0000, 10, true), (0x9_1000, 50, true), (0x9_2000, 2000, true)])
        notify(0)
        XCTAssertEqual(try usedLength(0, 1), UInt32(12 + f.count))
        XCTAssertEqual(try d.memory.read(0x9_0000, count: 10), [UInt8](repeating: 0, count: 10))
        XCTAssertEqual(try d.memory.read(0x9_1000, count: 50), [1, 0] + Array(f[0..<48]), "num_buffers (little-endian), then the frame")
        XCTAssertEqual(try d.memory.read(0x9_2000, count: f.count - 48), Array(f[48...]))
    }

    func testAFrameWaitsForBuffersWithoutBusyPolling() throws {
        try bringUp()
        let io = try IOThread()
        let bridge = TapBridge(device: net, transport: d.transport, ioThread: io)
        try io.start()
        defer { io.stop(); _ = bridge }
        try post(0, [(0x8_0000, 2048, true)])
        notify(0)
        for i in 1...3 { hostSend([UInt8](repeating: 0, count: 12) + frame(UInt8(i))) }
        var waited = 0
        while try usedIdx(0) < 1, waited < 200 { usleep(5000); waited += 1 }
        XCTAssertEqual(try usedIdx(0), 1, "the first frame went into the only buffer")
        // Two frames wait; with no buffers the tap is not polled, so the loop sleeps.
        usleep(50_000)
        let wakeups = io.wakeups.load(ordering: .relaxed)
        usleep(300_000)
        XCTAssertLessThanOrEqual(io.wakeups.load(ordering: .relaxed) - wakeups, 1, "no busy loop while the guest has no buffers")
        XCTAssertEqual(try usedIdx(0), 1)
        // More buffers: both waiting frames arrive, once each, in order.
        try post(0, [(0x8_1000, 2048, true)])
        try post(0, [(0x8_2000, 2048, true)])
        try post(0, [(0x8_3000, 2048, true)])
        notify(0)
        waited = 0
        while try usedIdx(0) < 3, waited < 200 { usleep(5000); waited += 1 }
        usleep(50_000)
        XCTAssertEqual(try usedIdx(0), 3, "each frame delivered once, one buffer left")
        XCTAssertEqual(try d.memory.load(0x8_1000 + 12 + 14, as: UInt8.self), 2)
        XCTAssertEqual(try d.memory.load(0x8_2000 + 12 + 14, as: UInt8.self), 3)
        XCTAssertEqual(d.transport.lock.withLock { net.counters.framesReceived }, 3)
    }

    func testHostileTransmitChainsAreRefusedAndTheQueueGoesOn() throws {
        try bringUp()
        try d.memory.write(0x8_0000, [UInt8](repeating: 0, count: 12) + frame(1))
        // A device-writable buffer on the transmit queue.
        try post(1, [(0x8_0000, 72, false), (0x9_0000, 16, true)])
        // Longer than any frame (inside guest memory).
        try post(1, [(0x1_0000, UInt32(VirtioNet.maxFrameSize + 1), false)])
        // Shorter than a header and an Ethernet header.
        try post(1, [(0x8_0000, 20, false)])
        // Outside guest memory, and wrapping around 2^64.
        try post(1, [(0xffff_f000, 72, false)])
        try post(1, [(UInt64.max - 8, 72, false)])
        notify(1)
        XCTAssertEqual(try usedIdx(1), 5, "every chain comes back")
        for i in 0..<5 { XCTAssertEqual(try usedLength(1, UInt16(i)), 0) }
        XCTAssertNil(hostReceive(ms: 50), "nothing reached the tap")
        XCTAssertEqual(net.counters.chainsRejected, 3)
        XCTAssertEqual(net.counters.transmitDropped, 2)
        XCTAssertEqual(net.counters.framesSent, 0)
        // A good frame after all that still goes out.
        try post(1, [(0x8_0000, 72, false)])
        notify(1)
        XCTAssertEqual(hostReceive(), [UInt8](repeating: 0, count: 12) + frame(1))
    }

    func testHostileReceiveChainsDoNotLoseTheFrame() throws {
        try bringUp()
        let f = frame(9)
        hostSend([UInt8](repeating: 0, count: 12) + f)
        try post(0, [(0x8_0000, 2048, false)])        // readable: wrong direction
        try post(0, [(0xffff_0000, 2048, true)])      // outside memory
        try post(0, [(0x8_1000, 2048, true)])
        notify(0)
        XCTAssertEqual(try usedIdx(0), 3)
        XCTAssertEqual(try usedLength(0, 0), 0)
        XCTAssertEqual(try usedLength(0, 1), 0)
        XCTAssertEqual(try usedLength(0, 2), UInt32(12 + f.count), "the frame went to the first usable buffer")
        XCTAssertEqual(try d.memory.read(0x8_1000 + 12, count: f.count), f)
        XCTAssertEqual(net.counters.chainsRejected, 2)
        // A buffer too small for the frame: the frame is dropped, the buffer returned empty.
        hostSend([UInt8](repeating: 0, count: 12) + frame(8, payload: 500))
        try post(0, [(0x8_2000, 100, true)])
        notify(0)
        XCTAssertEqual(try usedLength(0, 3), 0)
        XCTAssertEqual(net.counters.receiveDropped, 1)
        // Frames the guest cannot take are dropped at the door: too long, or GSO it did not negotiate.
        hostSend([UInt8](repeating: 0, count: VirtioNet.maxFrameSize + 100))
        var gso = [UInt8](repeating: 0, count: 12) + f
        gso[1] = 1
        hostSend(gso)
        hostSend([UInt8](repeating: 0, count: 12) + frame(7))
        try post(0, [(0x8_3000, 2048, true)])
        notify(0)
        XCTAssertEqual(try usedIdx(0), 5)
        XCTAssertEqual(try d.memory.load(0x8_3000 + 12 + 14, as: UInt8.self), 7)
        XCTAssertEqual(net.counters.receiveDropped, 3)
    }

    func testABrokenReceiveRingStopsPollingInsteadOfSpinning() throws {
        try bringUp()
        hostSend([UInt8](repeating: 0, count: 12) + frame(1))
        try d.memory.store(UInt16(100), at: d.ring(0).avail + 2)   // avail.idx jumps past the queue size
        XCTAssertEqual(d.transport.lock.withLock { net.pollEvents() }, Int16(POLLIN))
        notify(0)
        XCTAssertEqual(d.transport.lock.withLock { net.pollEvents() }, 0)
        XCTAssertNotEqual(d.reg(0x070) & 0x40, 0, "DEVICE_NEEDS_RESET")
        // The peer going away ends polling too.
        d.set(0x070, 0)
        try bringUp()
        close(ends[1]); ends[1] = -1
        try post(0, [(0x8_0000, 2048, true)])
        notify(0)
        XCTAssertNotNil(net.backendError)
        XCTAssertEqual(d.transport.lock.withLock { net.pollEvents() }, 0)
    }
}
