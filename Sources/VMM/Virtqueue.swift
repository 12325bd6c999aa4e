import CKVM

/// One split virtqueue (virtio 1.2 §2.7) as the device sees it.
///
/// The driver (guest) owns the descriptor table and the available ring; nothing read from them is
/// trusted. Ring placement is validated when the queue becomes ready; each chain is validated
/// as it is popped. Chain-level faults reject that chain only (the device returns it with length
/// 0); faults that make the ring itself unusable mark the queue broken, and every later pop
/// throws the same error, so a hostile driver can never make the device loop.
public final class Virtqueue {
    static let descNext: UInt16 = 1, descWrite: UInt16 = 2, descIndirect: UInt16 = 4
    static let availNoInterrupt: UInt16 = 1

    public let maxSize: UInt16
    public var size: UInt16
    public var descTable: UInt64 = 0
    public var availRing: UInt64 = 0
    public var usedRing: UInt64 = 0
    public private(set) var ready = false
    public private(set) var broken: VirtqueueError?
    public private(set) var nextAvail: UInt16 = 0
    public private(set) var nextUsed: UInt16 = 0
    var visited: [UInt32] = []
    var stamp: UInt32 = 0

    public init(maxSize: UInt16) {
        self.maxSize = maxSize
        size = maxSize
    }

    public func reset() {
        size = maxSize; descTable = 0; availRing = 0; usedRing = 0
        ready = false; broken = nil; nextAvail = 0; nextUsed = 0; visited = []
    }

    /// Checks size and ring placement against `memory` and marks the queue ready.
    public func activate(_ memory: GuestMemory) throws(VirtqueueError) {
        guard size > 0, size <= maxSize, size & (size - 1) == 0 else { throw .invalidSize(size) }
        let n = Int(size)
        let rings: [(String, UInt64, UInt64, Int)] = [
            ("descriptor", descTable, 16, 16 * n),
            ("available", availRing, 2, 6 + 2 * n),
            ("used", usedRing, 4, 6 + 8 * n),
        ]
        for (name, addr, align, length) in rings {
            if addr % align != 0 { throw .misaligned(ring: name, address: addr) }
            if !memory.contains(addr, length: length) { throw .ringOutsideMemory(ring: name, address: addr) }
        }
        visited = [UInt32](repeating: 0, count: n)
        nextAvail = 0; nextUsed = 0; broken = nil
        ready = true
    }

    public enum Entry: Equatable {
        case chain(DescriptorChain)
        /// A chain the device must not use; return `head` to the driver with length 0.
        case rejected(head: UInt16, VirtqueueError)
    }

    func fail(_ e: VirtqueueError) -> VirtqueueError { broken = e; return e }

    /// The next available chain, nil when the driver has posted nothing new.
    public func popAvailable(_ memory: GuestMemory) throws(VirtqueueError) -> Entry? {
        guard ready else { throw .notReady }
        if let b = broken { throw b }
        let availIdx: UInt16
        do { availIdx = try memory.load(availRing + 2) } catch { throw fail(.ringOutsideMemory(ring: "available", address: availRing)) }
        let pending = availIdx &- nextAvail
        if pending == 0 { return nil }
        if pending > size { throw fail(.availIndexJump(from: nextAvail, to: availIdx)) }
        ckvm_fence()   // read ring entries only after seeing the index
        let slot = availRing + 4 + 2 * UInt64(nextAvail % size)
        let head: UInt16
        do { head = try memory.load(slot) } catch { throw fail(.ringOutsideMemory(ring: "available", address: availRing)) }
        nextAvail &+= 1
        if head >= size { throw fail(.headOutOfRange(head)) }
        return walk(from: head, memory)
    }

    /// Whether the driver has posted chains the device has not popped yet, without popping one
    /// (a device that must not take a buffer it cannot fill yet asks this first). A broken or
    /// not-ready queue has none.
    public func hasAvailable(_ memory: GuestMemory) -> Bool {
        guard ready, broken == nil, let availIdx: UInt16 = try? memory.load(availRing + 2) else { return false }
        return availIdx != nextAvail
    }

    func walk(from head: UInt16, _ memory: GuestMemory) -> Entry {
        stamp &+= 1
        if stamp == 0 { for i in visited.indices { visited[i] = 0 }; stamp = 1 }
        var buffers: [DescriptorChain.Buffer] = []
        var index = head
        var sawWritable = false
        while true {
            if visited[Int(index)] == stamp { return .rejected(head: head, .loop(at: index)) }
            visited[Int(index)] = stamp
            if buffers.count >= Int(size) { return .rejected(head: head, .chainTooLong(Int(size))) }
            let d = descTable + 16 * UInt64(index)
            let addr: UInt64, len: UInt32, flags: UInt16, next: UInt16
            do {
                addr = try memory.load(d); len = try memory.load(d + 8)
                flags = try memory.load(d + 12); next = try memory.load(d + 14)
            } catch {
                return .rejected(head: head, .ringOutsideMemory(ring: "descriptor", address: descTable))
            }
            if flags & Virtqueue.descIndirect != 0 { return .rejected(head: head, .indirectNotSupported(index)) }
            let writable = flags & Virtqueue.descWrite != 0
            if !writable && sawWritable { return .rejected(head: head, .readableAfterWritable(index)) }
            sawWritable = sawWritable || writable
            if !memory.contains(addr, length: Int(len)) {
                return .rejected(head: head, .bufferOutsideMemory(address: addr, length: len))
            }
            buffers.append(.init(address: addr, length: len, writable: writable))
            guard flags & Virtqueue.descNext != 0 else { break }
            if next >= size { return .rejected(head: head, .nextOutOfRange(next)) }
            index = next
        }
        return .chain(DescriptorChain(head: head, buffers: buffers))
    }

    /// Returns chain `head` to the driver with `length` bytes written into it.
    public func addUsed(_ memory: GuestMemory, head: UInt16, length: UInt32) throws(VirtqueueError) {
        guard ready else { throw .notReady }
        if let b = broken { throw b }
        guard head < size else { throw .usedIndexOutOfRange(UInt32(head)) }
        let elem = usedRing + 4 + 8 * UInt64(nextUsed % size)
        do {
            try memory.store(UInt32(head), at: elem)
            try memory.store(length, at: elem + 4)
            ckvm_fence()   // the element must be visible before the index that publishes it
            nextUsed &+= 1
            try memory.store(nextUsed, at: usedRing + 2)
        } catch {
            throw fail(.ringOutsideMemory(ring: "used", address: usedRing))
        }
    }

    /// Whether the driver wants an interrupt for used buffers (VIRTQ_AVAIL_F_NO_INTERRUPT clear).
    public func wantsInterrupt(_ memory: GuestMemory) -> Bool {
        guard let flags: UInt16 = try? memory.load(availRing) else { return true }
        return flags & Virtqueue.availNoInterrupt == 0
    }
}
