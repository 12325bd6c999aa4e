@testable import VMM

/// A driver's view of a split virtqueue laid out in a synthetic guest memory buffer, for tests
/// that need no KVM. Layout: descriptors at 0x1000, avail at 0x2000, used at 0x3000, data from
/// 0x4000.
final class TestRing {
    let memory: GuestMemory
    let size: UInt16
    let desc: UInt64 = 0x1000, avail: UInt64 = 0x2000, used: UInt64 = 0x3000
    let data: UInt64 = 0x4000
    var availIdx: UInt16 = 0

    init(size: UInt16 = 8, memorySize: Int = 64 << 10) throws {
        memory = try GuestMemory(size: memorySize)
        self.size = size
    }

    /// A device-side queue placed on this ring and activated.
    func queue(maxSize: UInt16 = 256) throws -> Virtqueue {
        let q = Virtqueue(maxSize: maxSize)
        q.size = size
        q.descTable = desc; q.availRing = avail; q.usedRing = used
        try q.activate(memory)
        return q
    }

    func setDesc(_ i: UInt16, addr: UInt64, len: UInt32, flags: UInt16 = 0, next: UInt16 = 0) throws {
        let d = desc + 16 * UInt64(i)
        try memory.store(addr, at: d)
        try memory.store(len, at: d + 8)
        try memory.store(flags, at: d + 12)
        try memory.store(next, at: d + 14)
    }

    func post(_ head: UInt16) throws {
        try memory.store(head, at: avail + 4 + 2 * UInt64(availIdx % size))
        availIdx &+= 1
        try memory.store(availIdx, at: avail + 2)
    }

    func setAvailIdx(_ v: UInt16) throws {
        availIdx = v
        try memory.store(v, at: avail + 2)
    }

    var usedIdx: UInt16 { (try? memory.load(used + 2)) ?? 0xffff }

    func usedElem(_ i: UInt16) throws -> (id: UInt32, len: UInt32) {
        let e = used + 4 + 8 * UInt64(i % size)
        return (try memory.load(e), try memory.load(e + 4))
    }
}

let NEXT: UInt16 = 1, WRITE: UInt16 = 2, INDIRECT: UInt16 = 4
