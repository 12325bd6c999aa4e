#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import VMM

/// virtio-rng and virtio-fs behind the virtio-mmio transport over a synthetic memory buffer,
/// driven register by register (no KVM). Queue q's rings sit at 0x10000 * (q + 1).
final class VirtioDeviceTests: XCTestCase {
    final class Driver {
        let memory: GuestMemory
        let transport: VirtioMMIOTransport
        var availIdx = [UInt16](repeating: 0, count: 8)
        var interrupts = 0
        let size: UInt16 = 8

        init(_ device: VirtioDevice) throws {
            memory = try GuestMemory(size: 1 << 20)
            transport = VirtioMMIOTransport(device: device, memory: memory)
            transport.onInterrupt = { [unowned self] in interrupts += 1 }
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

        func ring(_ q: Int) -> (desc: UInt64, avail: UInt64, used: UInt64) {
            let base = UInt64(q + 1) * 0x10000
            return (base, base + 0x1000, base + 0x2000)
        }

        func bringUp(queues: Int, featuresLow: UInt32 = 0) {
            set(0x070, 0); set(0x070, 1); set(0x070, 3)
            set(0x024, 0); set(0x020, featuresLow)
            set(0x024, 1); set(0x020, 1); set(0x070, 3 | 8)
            for q in 0..<queues {
                let r = ring(q)
                set(0x030, UInt32(q)); set(0x038, UInt32(size))
                set(0x080, UInt32(r.desc)); set(0x090, UInt32(r.avail)); set(0x0a0, UInt32(r.used))
                set(0x044, 1)
            }
            set(0x070, 3 | 8 | 4)
        }

        /// Posts a chain of (address, length, writable) buffers as descriptors 0... on queue q,
        /// notifies, and returns the used length.
        func submit(_ q: Int, _ buffers: [(UInt64, UInt32, Bool)]) throws -> UInt32? {
            let r = ring(q)
            for (i, b) in buffers.enumerated() {
                let d = r.desc + UInt64(16 * i)
                try memory.store(b.0, at: d); try memory.store(b.1, at: d + 8)
                try memory.store(UInt16((i + 1 < buffers.count ? 1 : 0) | (b.2 ? 2 : 0)), at: d + 12)
                try memory.store(UInt16(i + 1), at: d + 14)
            }
            try memory.store(UInt16(0), at: r.avail + 4 + 2 * UInt64(availIdx[q] % size))
            availIdx[q] &+= 1
            try memory.store(availIdx[q], at: r.avail + 2)
            let before: UInt16 = try memory.load(r.used + 2)
            set(0x050, UInt32(q))
            let after: UInt16 = try memory.load(r.used + 2)
            guard after == before &+ 1 else { return nil }
            return try memory.load(r.used + 4 + 8 * UInt64(before % size) + 4)
        }
    }

    func testRNGFillsEveryWritableBuffer() throws {
        var calls = 0
        let rng = VirtioRNG(source: { buf in calls += 1; for i in buf.indices { buf[i] = 0xa5 }; return true })
        let d = try Driver(rng)
        XCTAssertEqual(d.reg(0x008), 4)
        d.bringUp(queues: 1)
        XCTAssertEqual(try d.submit(0, [(0x8_0000, 16, true)]), 16)
        XCTAssertEqual(try d.memory.read(0x8_0000, count: 17), [UInt8](repeating: 0xa5, count: 16) + [0])
        XCTAssertEqual(try d.submit(0, [(0x8_1000, 3, true), (0x8_2000, 5, true)]), 8)
        XCTAssertEqual(try d.memory.read(0x8_2000, count: 5), [UInt8](repeating: 0xa5, count: 5))
        XCTAssertEqual(rng.bytesServed, 24)
        XCTAssertGreaterThan(d.interrupts, 0)
        // A readable buffer is a driver bug: rejected with length 0, the queue keeps working.
        XCTAssertEqual(try d.submit(0, [(0x8_0000, 16, false)]), 0)
        XCTAssertEqual(rng.rejected, [.wrongDirection(expectedWritable: true)])
        // Large requests are capped.
        rng.maxBytesPerRequest = 100
        XCTAssertEqual(try d.submit(0, [(0x8_0000, 4096, true)]), 100)
        XCTAssertEqual(calls, 4)
    }

    func testRNGUsesGetrandom() throws {
        let rng = VirtioRNG()
        let d = try Driver(rng)
        d.bringUp(queues: 1)
        XCTAssertEqual(try d.submit(0, [(0x8_0000, 4096, true)]), 4096)
        let bytes = try d.memory.read(0x8_0000, count: 4096)
        XCTAssertGreaterThan(Set(bytes).count, 200, "4 KiB from getrandom covers most byte values")
        XCTAssertEqual(try d.memory.load(0x8_1000, as: UInt8.self), 0, "nothing past the buffer")
        XCTAssertEqual(try d.submit(0, [(0x8_0000, 32, true)]), 32)
        XCTAssertNotEqual(try d.memory.read(0x8_0000, count: 32), Array(bytes.prefix(32)))
    }

    func testVirtioFSConfigAndRequestsThroughTheTransport() throws {
        let tree = try TempTree()
        tree.mkdir("root")
        tree.write("root/f", "abc")
        let fs = try VirtioFS(tag: "rootfs", server: try FuseServer(root: tree.path("root")), requestQueues: 1, queueSize: 8)
        XCTAssertThrowsError(try VirtioFS(tag: String(repeating: "t", count: 37), server: fs.server))
        XCTAssertThrowsError(try VirtioFS(tag: "", server: fs.server))
        let d = try Driver(fs)
        XCTAssertEqual(d.reg(0x008), 26)
        var tag: [UInt8] = []
        for i in 0..<36 {
            var b: UInt8 = 0
            withUnsafeMutableBytes(of: &b) { d.transport.read(offset: 0x100 + UInt64(i), into: $0) }
            tag.append(b)
        }
        XCTAssertEqual(Array(tag.prefix(7)), Array("rootfs".utf8) + [0])
        XCTAssertEqual(d.reg(0x100 + 36), 1, "num_request_queues")
        d.bringUp(queues: 2)
        // INIT: request at 0x8_0000, reply room at 0x9_0000.
        var req = LittleEndianBytes()
        req.u32(40 + 64); req.u32(26); req.u64(1); req.u64(0); req.zeros(16)
        req.u32(7); req.u32(31); req.u32(0); req.u32(0); req.zeros(48)
        try d.memory.write(0x8_0000, req.bytes)
        XCTAssertEqual(try d.submit(1, [(0x8_0000, UInt32(req.count), false), (0x9_0000, 80, true)]), 80)
        XCTAssertEqual(try d.memory.load(0x9_0000 + 16, as: UInt32.self), 7)
        // LOOKUP with the reply split over two buffers.
        var lookup = LittleEndianBytes()
        lookup.u32(42); lookup.u32(1); lookup.u64(2); lookup.u64(1); lookup.zeros(16); lookup.raw(Array("f\0".utf8))
        try d.memory.write(0x8_0000, lookup.bytes)
        XCTAssertEqual(try d.submit(1, [(0x8_0000, 42, false), (0x9_0000, 16, true), (0xa_0000, 200, true)]), 16 + 128)
        XCTAssertEqual(try d.memory.load(0x9_0000 + 4, as: Int32.self), 0)
        XCTAssertEqual(try d.memory.load(0xa_0000 + 40 + 8, as: UInt64.self), 3, "attr.size")
        // A reply that does not fit is an error, not an overflow.
        try d.memory.write(0x8_0000, lookup.bytes)
        XCTAssertEqual(try d.submit(1, [(0x8_0000, 42, false), (0x9_0000, 20, true)]), 16)
        XCTAssertEqual(try d.memory.load(0x9_0000 + 4, as: Int32.self), -ERANGE)
        // FORGET on the high-priority queue: no reply, used length 0.
        var forget = LittleEndianBytes()
        forget.u32(48); forget.u32(2); forget.u64(3); forget.u64(2); forget.zeros(16); forget.u64(2)
        try d.memory.write(0x8_0000, forget.bytes)
        XCTAssertEqual(try d.submit(0, [(0x8_0000, 48, false)]), 0)
        XCTAssertEqual(fs.server.nodeCount, 1)
        // A request chain pointing outside guest memory is rejected by the queue, not the server.
        XCTAssertEqual(try d.submit(1, [(0x4000_0000, 64, false), (0x9_0000, 16, true)]), 0)
        XCTAssertEqual(fs.rejected.count, 1)
        XCTAssertEqual(fs.requestsServed, 4)
    }
}
