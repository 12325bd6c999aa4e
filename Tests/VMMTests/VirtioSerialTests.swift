import XCTest
@testable import VMM

/// The multiport console (virtio-serial) behind the transport, driven register by register.
final class VirtioSerialTests: XCTestCase {
    typealias Driver = VirtioDeviceTests.Driver

    func control(_ d: Driver, _ id: UInt32, _ event: UInt16, _ value: UInt16) throws -> UInt32? {
        var c = LittleEndianBytes(capacity: 8)
        c.u32(id); c.u16(event); c.u16(value)
        try d.memory.write(0x9_0000, c.bytes)
        return try d.submit(3, [(0x9_0000, 8, false)])
    }

    /// The used entry `i` of queue `q`: (length, the bytes at `buffer`).
    func used(_ d: Driver, _ q: Int, _ i: UInt64, buffer: UInt64) throws -> (UInt32, [UInt8]) {
        let r = d.ring(q)
        let len: UInt32 = try d.memory.load(r.used + 4 + 8 * i + 4)
        return (len, try d.memory.read(buffer, count: Int(len)))
    }

    func testControlHandshakeNamesThePortAndHoldsInputUntilTheGuestOpensIt() throws {
        let serial = VirtioSerial(portNames: ["agent"])
        let port = serial.ports[0]
        var out: [String] = []
        port.onOutput = { out.append(String(decoding: $0, as: UTF8.self)) }
        let d = try Driver(serial)
        XCTAssertEqual(d.reg(0x010) & 2, 2, "MULTIPORT offered")
        d.bringUp(queues: 6, featuresLow: 2)
        XCTAssertEqual(d.reg(0x104), 2, "max_nr_ports: port 0 (unused) and the agent port")

        XCTAssertNil(try d.submit(2, [(0x8_0000, 64, true)]))
        XCTAssertEqual(try control(d, 0xffff_ffff, 0, 1), 0)                 // DEVICE_READY
        XCTAssertEqual(try used(d, 2, 0, buffer: 0x8_0000).1, [1, 0, 0, 0, 1, 0, 1, 0])   // DEVICE_ADD 1
        XCTAssertNil(try d.submit(2, [(0x8_0000, 64, true)]))
        XCTAssertEqual(try control(d, 1, 3, 1), 0)                            // PORT_READY
        XCTAssertEqual(try used(d, 2, 1, buffer: 0x8_0000).1, [1, 0, 0, 0, 7, 0, 1, 0] + Array("agent".utf8))
        XCTAssertEqual(try d.submit(2, [(0x8_0000, 64, true)]), 8)           // PORT_OPEN 1 was waiting
        XCTAssertEqual(try d.memory.read(0x8_0000, count: 8), [1, 0, 0, 0, 6, 0, 1, 0])

        // Host bytes before the guest opened the port are held (Linux would discard them).
        port.send(Array("early".utf8))
        XCTAssertNil(try d.submit(4, [(0xa_0000, 64, true)]))
        XCTAssertEqual(port.pendingInputCount, 5)
        XCTAssertEqual(try d.submit(5, [(0xb_0000, 2, false)]), 0)
        XCTAssertEqual(out.count, 1)
        // Malformed and unknown control messages are ignored.
        try d.memory.write(0x9_0000, [6, 0, 0, 0])
        XCTAssertEqual(try d.submit(3, [(0x9_0000, 4, false)]), 0)
        XCTAssertEqual(try control(d, 9, 6, 1), 0)
        XCTAssertEqual(port.pendingInputCount, 5)
        XCTAssertEqual(try control(d, 1, 6, 1), 0)                            // the guest opens the port
        let (n, bytes) = try used(d, 4, 0, buffer: 0xa_0000)
        XCTAssertEqual(n, 5)
        XCTAssertEqual(bytes, Array("early".utf8))
        XCTAssertEqual(port.pendingInputCount, 0)
        XCTAssertTrue(port.guestOpen)
        XCTAssertEqual(try control(d, 1, 6, 0), 0)                            // and closes it
        XCTAssertFalse(port.guestOpen)
        XCTAssertEqual(serial.rejected, [])
    }

    func testWithoutMultiportTheFirstPortIsAPlainConsole() throws {
        let serial = VirtioSerial(portNames: ["agent"])
        let d = try Driver(serial)
        d.bringUp(queues: 2)
        serial.ports[0].send(Array("hi".utf8))
        XCTAssertEqual(try d.submit(0, [(0x8_0000, 64, true)]), 2)
        XCTAssertEqual(try d.memory.read(0x8_0000, count: 2), Array("hi".utf8))
    }
}
