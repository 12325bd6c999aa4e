import XCTest
@testable import VMM

final class GuestMemoryTests: XCTestCase {
    func testBoundsAreCheckedWithoutOverflow() throws {
        let m = try GuestMemory(size: 1 << 16)
        XCTAssertTrue(m.contains(0, length: 1 << 16))
        XCTAssertTrue(m.contains(1 << 16, length: 0))
        XCTAssertFalse(m.contains(1, length: 1 << 16))
        XCTAssertFalse(m.contains(0xffff_ffff_ffff_ffff, length: 2))
        XCTAssertFalse(m.contains(0, length: -1))
        XCTAssertThrowsError(try m.load(0xfffe, as: UInt32.self)) {
            XCTAssertEqual($0 as? KvmError, .outOfGuestMemory(address: 0xfffe, length: 4))
        }
        XCTAssertThrowsError(try m.write(0xffff_ffff_ffff_fff0, [UInt8](repeating: 0, count: 32)))
        XCTAssertThrowsError(try m.read(0x10000, count: 1))
    }

    func testLoadStoreLittleEndianUnaligned() throws {
        let m = try GuestMemory(size: 1 << 16)
        try m.store(UInt32(0x1122_3344), at: 0x101)
        XCTAssertEqual(try m.read(0x101, count: 4), [0x44, 0x33, 0x22, 0x11])
        XCTAssertEqual(try m.load(0x101, as: UInt32.self), 0x1122_3344)
        try m.fill(0x100, count: 8, byte: 0xaa)
        XCTAssertEqual(try m.load(0x100, as: UInt64.self), 0xaaaa_aaaa_aaaa_aaaa)
    }

    func testRegionsWithAGap() throws {
        let m = try GuestMemory(layout: [(0x10000, 0x1000), (0, 0x2000)])
        XCTAssertEqual(m.regions.map(\.guestBase), [0, 0x10000])
        XCTAssertEqual(m.totalSize, 0x3000)
        XCTAssertTrue(m.contains(0x10000, length: 0x1000))
        XCTAssertFalse(m.contains(0x2000, length: 1))        // the gap
        XCTAssertFalse(m.contains(0x1fff, length: 2))        // crosses into the gap
        try m.store(UInt8(7), at: 0x10fff)
        XCTAssertEqual(try m.load(0x10fff, as: UInt8.self), 7)
        XCTAssertThrowsError(try GuestMemory(layout: [(0, 0x2000), (0x1000, 0x1000)]))   // overlap
        XCTAssertThrowsError(try GuestMemory(layout: [(0, 100)]))                        // not a page multiple
    }

    func testResidentBytesCountsTouchedPages() throws {
        let m = try GuestMemory(size: 1 << 20)
        let before = m.residentBytes()
        try m.fill(0, count: 3 * 4096, byte: 1)
        XCTAssertGreaterThanOrEqual(m.residentBytes() - before, 3 * 4096)
    }
}

final class DeviceBusTests: XCTestCase {
    final class Recorder: BusDevice {
        var writes: [(UInt64, [UInt8])] = []
        func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
            for i in data.indices { data[i] = UInt8(truncatingIfNeeded: offset) }
        }
        func write(offset: UInt64, from data: UnsafeRawBufferPointer) { writes.append((offset, Array(data))) }
    }

    func testDispatchAndOverlap() throws {
        let bus = PortIOBus()
        let a = Recorder(), b = Recorder()
        try bus.insert(a, base: 0x3f8, length: 8)
        try bus.insert(b, base: 0x60, length: 5)
        XCTAssertThrowsError(try bus.insert(Recorder(), base: 0x3ff, length: 2))
        XCTAssertThrowsError(try bus.insert(Recorder(), base: 0x5c, length: 5))
        XCTAssertThrowsError(try bus.insert(Recorder(), base: 0xffff_ffff_ffff_fff0, length: 0x20))
        var x: [UInt8] = [0, 0]
        _ = x.withUnsafeMutableBytes { bus.read(0x3fd, into: $0) }
        XCTAssertEqual(x, [5, 5])
        XCTAssertTrue([UInt8(9)].withUnsafeBytes { bus.write(0x64, from: $0) })
        XCTAssertEqual(b.writes.first?.0, 4)
        XCTAssertFalse(x.withUnsafeMutableBytes { bus.read(0x80, into: $0) })
        XCTAssertEqual(x, [0xff, 0xff])
        XCTAssertEqual(bus.unclaimedAccesses, 1)
        XCTAssertEqual(bus.lastUnclaimed, 0x80)
        XCTAssertNil(bus.lookup(0x400))
        XCTAssertNil(bus.lookup(0x5f))
    }
}

final class Serial8250Tests: XCTestCase {
    func reg(_ s: Serial8250, _ r: UInt64) -> UInt8 {
        var v: [UInt8] = [0]
        v.withUnsafeMutableBytes { s.read(offset: r, into: $0) }
        return v[0]
    }
    func set(_ s: Serial8250, _ r: UInt64, _ v: UInt8) { [v].withUnsafeBytes { s.write(offset: r, from: $0) } }

    func testOutputInputAndStatus() {
        let s = Serial8250()
        var seen: [UInt8] = []
        s.onOutput = { seen.append($0) }
        XCTAssertEqual(reg(s, 5) & 0x60, 0x60)        // THRE | TEMT: always ready
        for c in "hi\n".utf8 { set(s, 0, c) }
        XCTAssertEqual(s.outputString, "hi\n")
        XCTAssertEqual(seen, Array("hi\n".utf8))
        XCTAssertEqual(reg(s, 5) & 1, 0)
        s.queueInput([0x41])
        XCTAssertEqual(reg(s, 5) & 1, 1)
        XCTAssertEqual(reg(s, 0), 0x41)
        XCTAssertEqual(reg(s, 5) & 1, 0)
    }

    func testDivisorLatchScratchAndInterrupts() {
        let s = Serial8250()
        var irqs = 0
        s.onInterrupt = { irqs += 1 }
        set(s, 3, 0x80)          // DLAB
        set(s, 0, 0x01); set(s, 1, 0x00)
        XCTAssertEqual(reg(s, 0), 0x01)
        set(s, 3, 0x03)
        XCTAssertTrue(s.output.isEmpty)  // divisor writes are not output
        set(s, 7, 0x5a)
        XCTAssertEqual(reg(s, 7), 0x5a)
        XCTAssertEqual(reg(s, 2), 0x01)  // no interrupt pending
        set(s, 1, 0x02)                  // THRI on: THR is empty, so it fires
        XCTAssertEqual(irqs, 1)
        XCTAssertEqual(reg(s, 2), 0x02)
        XCTAssertEqual(reg(s, 2), 0x01)  // reading IIR cleared it
        set(s, 1, 0x01)
        s.queueInput([1])
        XCTAssertEqual(reg(s, 2), 0x04)
    }

    func testLoopbackForDriverProbing() {
        let s = Serial8250()
        set(s, 4, 0x10 | 0x0a)           // LOOP | RTS | OUT2
        XCTAssertEqual(reg(s, 6) & 0xf0, 0x90)   // CTS | DCD
        set(s, 0, 0x55)
        XCTAssertTrue(s.output.isEmpty)
        XCTAssertEqual(reg(s, 0), 0x55)
    }
}
