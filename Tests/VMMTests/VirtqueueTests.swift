import XCTest
@testable import VMM

/// Split virtqueue walking over a synthetic memory buffer, including hostile drivers.
final class VirtqueueTests: XCTestCase {
    func chain(_ e: Virtqueue.Entry?) throws -> DescriptorChain {
        if case .chain(let c)? = e { return c }
        XCTFail("expected a chain, got \(String(describing: e))")
        throw VirtqueueError.notReady
    }

    func rejection(_ e: Virtqueue.Entry?) -> VirtqueueError? {
        if case .rejected(_, let why)? = e { return why }
        return nil
    }

    func testEmptyQueuePopsNothing() throws {
        let r = try TestRing()
        let q = try r.queue()
        XCTAssertNil(try q.popAvailable(r.memory))
    }

    func testValidChainReadableThenWritable() throws {
        let r = try TestRing()
        let q = try r.queue()
        try r.memory.write(r.data, Array("request".utf8))
        try r.setDesc(2, addr: r.data, len: 7, flags: NEXT, next: 5)
        try r.setDesc(5, addr: r.data + 0x100, len: 16, flags: WRITE)
        try r.post(2)
        let c = try chain(q.popAvailable(r.memory))
        XCTAssertEqual(c.head, 2)
        XCTAssertEqual(c.readableLength, 7)
        XCTAssertEqual(c.writableLength, 16)
        XCTAssertEqual(try c.readAll(r.memory), Array("request".utf8))
        XCTAssertEqual(try c.write(Array("response-longer-than-16".utf8)[...], into: r.memory), 16)
        XCTAssertEqual(try r.memory.read(r.data + 0x100, count: 16), Array("response-longer-".utf8))
        try q.addUsed(r.memory, head: c.head, length: 16)
        XCTAssertEqual(r.usedIdx, 1)
        XCTAssertEqual(try r.usedElem(0).id, 2)
        XCTAssertEqual(try r.usedElem(0).len, 16)
        XCTAssertNil(try q.popAvailable(r.memory))
    }

    func testLoopIsRejected() throws {
        let r = try TestRing()
        let q = try r.queue()
        try r.setDesc(0, addr: r.data, len: 1, flags: NEXT, next: 1)
        try r.setDesc(1, addr: r.data, len: 1, flags: NEXT, next: 2)
        try r.setDesc(2, addr: r.data, len: 1, flags: NEXT, next: 0)
        try r.post(0)
        XCTAssertEqual(rejection(try q.popAvailable(r.memory)), .loop(at: 0))
        try r.setDesc(3, addr: r.data, len: 1, flags: NEXT, next: 3)   // points at itself
        try r.post(3)
        XCTAssertEqual(rejection(try q.popAvailable(r.memory)), .loop(at: 3))
        // The queue still works afterwards.
        try r.setDesc(4, addr: r.data, len: 1)
        try r.post(4)
        XCTAssertEqual(try chain(q.popAvailable(r.memory)).head, 4)
    }

    func testChainUsingEveryDescriptorIsFineButNotMore() throws {
        let r = try TestRing(size: 4)
        let q = try r.queue()
        for i: UInt16 in 0..<4 { try r.setDesc(i, addr: r.data, len: 1, flags: i < 3 ? NEXT : 0, next: i + 1) }
        try r.post(0)
        XCTAssertEqual(try chain(q.popAvailable(r.memory)).buffers.count, 4)
        try r.setDesc(3, addr: r.data, len: 1, flags: NEXT, next: 1)   // now 0-1-2-3-1...
        try r.post(0)
        XCTAssertEqual(rejection(try q.popAvailable(r.memory)), .loop(at: 1))
    }

    func testBuffersOutsideMemoryAreRejected() throws {
        let r = try TestRing()
        let q = try r.queue()
        let cases: [(UInt64, UInt32)] = [
            (64 << 10, 1),                     // just past the end
            ((64 << 10) - 4, 8),               // straddles the end
            (0xffff_ffff_ffff_fff0, 0x100),    // wraps around 2^64
            (0xd000_0000, 4),                  // MMIO, not RAM
        ]
        for (i, (addr, len)) in cases.enumerated() {
            try r.setDesc(UInt16(i), addr: addr, len: len)
            try r.post(UInt16(i))
            XCTAssertEqual(rejection(try q.popAvailable(r.memory)), .bufferOutsideMemory(address: addr, length: len))
        }
        // The last byte of memory is fine; zero length at the end too.
        try r.setDesc(6, addr: (64 << 10) - 1, len: 1, flags: NEXT, next: 7)
        try r.setDesc(7, addr: 64 << 10, len: 0, flags: WRITE)
        try r.post(6)
        XCTAssertEqual(try chain(q.popAvailable(r.memory)).buffers.count, 2)
    }

    func testWrongDirectionIsRejected() throws {
        let r = try TestRing()
        let q = try r.queue()
        try r.setDesc(0, addr: r.data, len: 4, flags: WRITE | NEXT, next: 1)
        try r.setDesc(1, addr: r.data, len: 4)
        try r.post(0)
        XCTAssertEqual(rejection(try q.popAvailable(r.memory)), .readableAfterWritable(1))
        // A device that wants only readable buffers refuses a writable one.
        try r.setDesc(2, addr: r.data, len: 4, flags: WRITE)
        try r.post(2)
        let c = try chain(q.popAvailable(r.memory))
        XCTAssertThrowsError(try c.require(writable: false)) {
            XCTAssertEqual($0 as? VirtqueueError, .wrongDirection(expectedWritable: false))
        }
        XCTAssertNoThrow(try c.require(writable: true))
    }

    func testIndirectAndOutOfRangeNextAreRejected() throws {
        let r = try TestRing()
        let q = try r.queue()
        try r.setDesc(0, addr: r.data, len: 16, flags: INDIRECT)
        try r.post(0)
        XCTAssertEqual(rejection(try q.popAvailable(r.memory)), .indirectNotSupported(0))
        try r.setDesc(1, addr: r.data, len: 1, flags: NEXT, next: 8)
        try r.post(1)
        XCTAssertEqual(rejection(try q.popAvailable(r.memory)), .nextOutOfRange(8))
        try r.setDesc(2, addr: r.data, len: 1, flags: NEXT, next: 0xffff)
        try r.post(2)
        XCTAssertEqual(rejection(try q.popAvailable(r.memory)), .nextOutOfRange(0xffff))
    }

    func testHeadOutOfRangeBreaksTheQueueForGood() throws {
        let r = try TestRing()
        let q = try r.queue()
        try r.post(9)
        XCTAssertThrowsError(try q.popAvailable(r.memory)) { XCTAssertEqual($0 as? VirtqueueError, .headOutOfRange(9)) }
        try r.setDesc(0, addr: r.data, len: 1)
        try r.post(0)
        XCTAssertThrowsError(try q.popAvailable(r.memory)) { XCTAssertEqual($0 as? VirtqueueError, .headOutOfRange(9)) }
        XCTAssertEqual(q.broken, .headOutOfRange(9))
        XCTAssertThrowsError(try q.addUsed(r.memory, head: 0, length: 0))
    }

    func testAvailIndexJumpBreaksTheQueue() throws {
        let r = try TestRing()
        let q = try r.queue()
        try r.setAvailIdx(9)   // 9 new entries in a queue of 8
        XCTAssertThrowsError(try q.popAvailable(r.memory)) {
            XCTAssertEqual($0 as? VirtqueueError, .availIndexJump(from: 0, to: 9))
        }
        XCTAssertNotNil(q.broken)
    }

    func testActivationChecksSizeAlignmentAndPlacement() throws {
        let memory = try GuestMemory(size: 64 << 10)
        func attempt(size: UInt16, desc: UInt64 = 0x1000, avail: UInt64 = 0x2000, used: UInt64 = 0x3000) -> VirtqueueError? {
            let q = Virtqueue(maxSize: 256)
            q.size = size; q.descTable = desc; q.availRing = avail; q.usedRing = used
            do { try q.activate(memory); return nil } catch { return error }
        }
        XCTAssertNil(attempt(size: 256))
        XCTAssertEqual(attempt(size: 0), .invalidSize(0))
        XCTAssertEqual(attempt(size: 3), .invalidSize(3))
        XCTAssertEqual(attempt(size: 512), .invalidSize(512))
        XCTAssertEqual(attempt(size: 8, desc: 0x1008), .misaligned(ring: "descriptor", address: 0x1008))
        XCTAssertEqual(attempt(size: 8, avail: 0x2001), .misaligned(ring: "available", address: 0x2001))
        XCTAssertEqual(attempt(size: 8, used: 0x3002), .misaligned(ring: "used", address: 0x3002))
        XCTAssertNil(attempt(size: 8, desc: 0xff80))   // ends exactly at the end of memory
        XCTAssertEqual(attempt(size: 8, desc: 0xffc0), .ringOutsideMemory(ring: "descriptor", address: 0xffc0))
        XCTAssertEqual(attempt(size: 8, used: 0xfffc), .ringOutsideMemory(ring: "used", address: 0xfffc))
        XCTAssertEqual(attempt(size: 8, avail: 0xffff_ffff_ffff_fffe), .ringOutsideMemory(ring: "available", address: 0xffff_ffff_ffff_fffe))
    }

    func testIndicesWrapAround() throws {
        let r = try TestRing(size: 2)
        let q = try r.queue()
        try r.setDesc(0, addr: r.data, len: 1)
        try r.setDesc(1, addr: r.data, len: 1)
        for i in 0..<70_000 {
            try r.post(UInt16(i % 2))
            let c = try chain(q.popAvailable(r.memory))
            XCTAssertEqual(c.head, UInt16(i % 2))
            try q.addUsed(r.memory, head: c.head, length: 1)
        }
        XCTAssertEqual(r.usedIdx, UInt16(70_000 % 65_536))
    }

    /// Random descriptor tables and avail rings: every pop must finish, and the number of pops
    /// before the queue is empty or broken is bounded by what the driver posted.
    func testRandomGarbageNeverHangsOrCrashes() throws {
        var seed: UInt64 = 0x9e37_79b9_7f4a_7c15
        func next() -> UInt64 {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
            return seed
        }
        for _ in 0..<300 {
            let r = try TestRing(size: 16)
            let q = try r.queue()
            for i: UInt16 in 0..<16 {
                let addr = next() % 3 == 0 ? next() : r.data + next() % 0x8000
                let flags = UInt16(truncatingIfNeeded: next()) & (next() % 4 == 0 ? 0xffff : 0x3)
                try r.setDesc(i, addr: addr, len: UInt32(truncatingIfNeeded: next() % 0x2000),
                              flags: flags, next: UInt16(truncatingIfNeeded: next() % 24))
            }
            for i in 0..<16 { try r.memory.store(UInt16(truncatingIfNeeded: next() % 20), at: r.avail + 4 + 2 * UInt64(i)) }
            try r.setAvailIdx(UInt16(truncatingIfNeeded: next() % 20))
            var pops = 0
            do {
                while let e = try q.popAvailable(r.memory) {
                    pops += 1
                    if case .chain(let c) = e {
                        XCTAssertLessThanOrEqual(c.buffers.count, 16)
                        for b in c.buffers { XCTAssertTrue(r.memory.contains(b.address, length: Int(b.length))) }
                    }
                    XCTAssertLessThanOrEqual(pops, 16)
                    if pops > 16 { break }
                }
            } catch {
                XCTAssertNotNil(q.broken)
            }
        }
    }
}
