import XCTest
@testable import VMM

/// The virtio-mmio transport and the console device driven register by register, as a guest
/// driver would, over a synthetic memory buffer (no KVM).
final class VirtioMMIOTests: XCTestCase {
    final class Driver {
        let ring: TestRing   // the transmit queue's ring; receive uses a second layout
        let rx: TestRing
        let transport: VirtioMMIOTransport
        let console = VirtioConsole(queueSize: 16)
        var interrupts = 0
        var output: [String] = []

        init() throws {
            ring = try TestRing(size: 8, memorySize: 128 << 10)
            rx = ring
            transport = VirtioMMIOTransport(device: console, memory: ring.memory)
            transport.onInterrupt = { [unowned self] in interrupts += 1 }
            console.onOutput = { [unowned self] in output.append(String(decoding: $0, as: UTF8.self)) }
        }

        func read(_ off: UInt64, width: Int = 4) -> UInt32 {
            var v: UInt64 = 0
            withUnsafeMutableBytes(of: &v) { transport.read(offset: off, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<width])) }
            return UInt32(truncatingIfNeeded: v)
        }

        func write(_ off: UInt64, _ v: UInt32, width: Int = 4) {
            var x = v
            withUnsafeBytes(of: &x) { transport.write(offset: off, from: UnsafeRawBufferPointer(rebasing: $0[0..<width])) }
        }

        /// Queue 0 rings at 0x10000 (desc) / 0x11000 / 0x12000; queue 1 at TestRing's layout.
        func setUpQueue(_ index: UInt32, desc: UInt64, avail: UInt64, used: UInt64) {
            write(0x030, index)
            write(0x038, 8)
            write(0x080, UInt32(truncatingIfNeeded: desc)); write(0x084, UInt32(desc >> 32))
            write(0x090, UInt32(truncatingIfNeeded: avail)); write(0x094, UInt32(avail >> 32))
            write(0x0a0, UInt32(truncatingIfNeeded: used)); write(0x0a4, UInt32(used >> 32))
            write(0x044, 1)
        }

        func negotiate(features high: UInt32 = 1) {
            write(0x070, 0); write(0x070, 1); write(0x070, 3)
            write(0x024, 1); write(0x020, high)
            write(0x070, 3 | 8)
        }

        func bringUp() {
            negotiate()
            setUpQueue(0, desc: 0x10000, avail: 0x11000, used: 0x12000)
            setUpQueue(1, desc: ring.desc, avail: ring.avail, used: ring.used)
            write(0x070, 3 | 8 | 4)
        }
    }

    func testIdentificationRegisters() throws {
        let d = try Driver()
        XCTAssertEqual(d.read(0x000), 0x7472_6976)
        XCTAssertEqual(d.read(0x004), 2)
        XCTAssertEqual(d.read(0x008), 3)
        XCTAssertEqual(d.read(0x00c), 0x554d_4551)
        d.write(0x014, 1)
        XCTAssertEqual(d.read(0x010), 1)   // VIRTIO_F_VERSION_1
        d.write(0x014, 0)
        XCTAssertEqual(d.read(0x010), 0)
        d.write(0x014, 7)
        XCTAssertEqual(d.read(0x010), 0)
        d.write(0x030, 0)
        XCTAssertEqual(d.read(0x034), 16)
        d.write(0x030, 5)
        XCTAssertEqual(d.read(0x034), 0)   // no such queue
    }

    func testMisalignedOrNarrowRegisterAccessIsIgnored() throws {
        let d = try Driver()
        XCTAssertEqual(d.read(0x001), 0)
        XCTAssertEqual(d.read(0x000, width: 2), 0)
        d.write(0x070, 1, width: 1)
        XCTAssertEqual(d.read(0x070), 0)
        XCTAssertEqual(d.read(0x100, width: 2), 0)   // config space: cols
    }

    func testFeaturesOKRefusedWithoutVersion1OrWithUnofferedFeatures() throws {
        let d = try Driver()
        d.negotiate(features: 0)
        XCTAssertEqual(d.read(0x070) & 8, 0)
        d.negotiate(features: 1 | 2)   // bit 33 is not offered
        XCTAssertEqual(d.read(0x070) & 8, 0)
        d.negotiate(features: 1)
        XCTAssertEqual(d.read(0x070), 3 | 8)
        // DRIVER_OK without FEATURES_OK is not accepted.
        d.write(0x070, 0); d.write(0x070, 1); d.write(0x070, 3 | 4)
        XCTAssertEqual(d.read(0x070) & 4, 0)
        XCTAssertFalse(d.transport.activated)
    }

    func testQueueWithRingsOutsideMemoryStaysNotReady() throws {
        let d = try Driver()
        d.negotiate()
        d.setUpQueue(0, desc: 0xd000_0000, avail: 0x11000, used: 0x12000)
        XCTAssertEqual(d.read(0x044), 0)
        XCTAssertEqual(d.transport.lastFault, .ringOutsideMemory(ring: "descriptor", address: 0xd000_0000))
    }

    func testLiveQueueCannotBeMoved() throws {
        let d = try Driver()
        d.bringUp()
        d.write(0x030, 1)
        d.write(0x080, 0x5000)
        XCTAssertEqual(d.read(0x080), UInt32(d.ring.desc))
        XCTAssertEqual(d.read(0x038), 8)
    }

    func testTransmitReachesTheHost() throws {
        let d = try Driver()
        d.bringUp()
        XCTAssertTrue(d.transport.activated)
        try d.ring.memory.write(d.ring.data, Array("hello ".utf8))
        try d.ring.memory.write(d.ring.data + 0x100, Array("world".utf8))
        try d.ring.setDesc(0, addr: d.ring.data, len: 6, flags: NEXT, next: 1)
        try d.ring.setDesc(1, addr: d.ring.data + 0x100, len: 5)
        try d.ring.post(0)
        d.write(0x050, 1)
        XCTAssertEqual(d.output, ["hello world"])
        XCTAssertEqual(d.ring.usedIdx, 1)
        XCTAssertEqual(d.read(0x060) & 1, 1)
        XCTAssertEqual(d.interrupts, 1)
        d.write(0x064, 1)
        XCTAssertEqual(d.read(0x060), 0)
    }

    func testReceiveDeliversQueuedBytesAcrossBuffers() throws {
        let d = try Driver()
        d.console.send(Array("0123456789".utf8))   // before the driver is up: kept pending
        d.bringUp()
        let m = d.ring.memory
        // Post two 4-byte writable buffers on the receive queue (desc table at 0x10000).
        for i: UInt64 in 0..<2 {
            let desc = 0x10000 + 16 * i
            try m.store(UInt64(0x13000 + 0x100 * i), at: desc)
            try m.store(UInt32(4), at: desc + 8)
            try m.store(WRITE, at: desc + 12)
            try m.store(UInt16(i), at: 0x11000 + 4 + 2 * i)
        }
        try m.store(UInt16(2), at: 0x11002)
        d.write(0x050, 0)
        XCTAssertEqual(try m.read(0x13000, count: 4), Array("0123".utf8))
        XCTAssertEqual(try m.read(0x13100, count: 4), Array("4567".utf8))
        XCTAssertEqual(try m.load(0x12002, as: UInt16.self), 2)
        XCTAssertEqual(try m.load(0x12008, as: UInt32.self), 4)
        XCTAssertEqual(d.console.pendingInput, Array("89".utf8))
        // More room later: the rest goes out.
        try m.store(UInt16(0), at: 0x11000 + 4 + 4)
        try m.store(UInt16(3), at: 0x11002)
        d.write(0x050, 0)
        XCTAssertEqual(try m.read(0x13000, count: 2), Array("89".utf8))
        XCTAssertTrue(d.console.pendingInput.isEmpty)
    }

    func testReadOnlyBufferOnReceiveQueueIsRejected() throws {
        let d = try Driver()
        d.bringUp()
        d.console.send([1, 2, 3])
        let m = d.ring.memory
        try m.store(UInt64(0x13000), at: 0x10000)
        try m.store(UInt32(4), at: 0x10008)
        try m.store(UInt16(0), at: 0x1000c)   // device-readable: wrong for receiveq
        try m.store(UInt16(0), at: 0x11004)
        try m.store(UInt16(1), at: 0x11002)
        d.write(0x050, 0)
        XCTAssertEqual(d.console.rejected, [.wrongDirection(expectedWritable: true)])
        XCTAssertEqual(try m.load(0x12002, as: UInt16.self), 1)
        XCTAssertEqual(try m.load(0x12008, as: UInt32.self), 0)
        XCTAssertEqual(d.console.pendingInput, [1, 2, 3])
    }

    func testBrokenQueueSetsNeedsResetAndResetRecovers() throws {
        let d = try Driver()
        d.bringUp()
        try d.ring.setAvailIdx(100)
        d.write(0x050, 1)
        XCTAssertEqual(d.read(0x070) & 0x40, 0x40)
        XCTAssertEqual(d.read(0x060) & 2, 2)
        XCTAssertEqual(d.transport.lastFault, .availIndexJump(from: 0, to: 100))
        d.write(0x050, 1)   // ignored while NEEDS_RESET
        d.write(0x070, 0)
        XCTAssertEqual(d.read(0x070), 0)
        XCTAssertFalse(d.transport.activated)
        try d.ring.setAvailIdx(0)
        d.ring.availIdx = 0
        d.bringUp()
        try d.ring.memory.write(d.ring.data, Array("again".utf8))
        try d.ring.setDesc(0, addr: d.ring.data, len: 5)
        try d.ring.post(0)
        d.write(0x050, 1)
        XCTAssertEqual(d.output, ["again"])
    }

    func testKernelParameter() {
        XCTAssertEqual(VirtioMMIOTransport.kernelParameter(base: 0xd000_0000, irq: 5), "virtio_mmio.device=4K@0xd0000000:5")
    }
}
