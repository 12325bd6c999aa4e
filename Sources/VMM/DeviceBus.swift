/// A device on a bus sees offsets relative to its base and 1-8 byte accesses.
public protocol BusDevice: AnyObject {
    func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer)
    func write(offset: UInt64, from data: UnsafeRawBufferPointer)
}

/// Non-overlapping address ranges mapped to devices. Unclaimed reads return all-ones bytes
/// (as an absent ISA/PCI device does) and unclaimed writes are dropped and counted.
public class DeviceBus {
    public struct Mapping {
        public let base: UInt64
        public let length: UInt64
        public let device: BusDevice
    }

    public let name: String
    /// Fixed before the vCPUs run; lookups from several vCPU threads only read it.
    public private(set) var mappings: [Mapping] = []
    let statsLock = DeviceLock()
    var unclaimed = 0
    var lastUnclaimedAddress: UInt64?
    /// Accesses no device claimed (any vCPU thread).
    public var unclaimedAccesses: Int { statsLock.withLock { unclaimed } }
    /// The last unclaimed address, for debugging guests.
    public var lastUnclaimed: UInt64? { statsLock.withLock { lastUnclaimedAddress } }

    func countUnclaimed(_ address: UInt64) {
        statsLock.withLock {
            unclaimed += 1
            lastUnclaimedAddress = address
        }
    }

    public init(name: String) { self.name = name }

    public func insert(_ device: BusDevice, base: UInt64, length: UInt64) throws(KvmError) {
        guard length > 0, !base.addingReportingOverflow(length).overflow else {
            throw .invalidConfiguration("\(name) bus: empty or wrapping range at 0x\(String(base, radix: 16))")
        }
        for m in mappings where base < m.base + m.length && m.base < base + length {
            throw .invalidConfiguration("\(name) bus: 0x\(String(base, radix: 16))+\(length) overlaps 0x\(String(m.base, radix: 16))+\(m.length)")
        }
        mappings.append(Mapping(base: base, length: length, device: device))
        mappings.sort { $0.base < $1.base }
    }

    /// The mapping containing `address`, by binary search.
    public func lookup(_ address: UInt64) -> Mapping? {
        var lo = 0, hi = mappings.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let m = mappings[mid]
            if address < m.base { hi = mid } else if address - m.base >= m.length { lo = mid + 1 } else { return m }
        }
        return nil
    }

    /// Dispatches a read; returns false if no device claimed it (data is then all ones).
    @discardableResult
    public func read(_ address: UInt64, into data: UnsafeMutableRawBufferPointer) -> Bool {
        guard let m = lookup(address) else {
            for i in data.indices { data[i] = 0xff }
            countUnclaimed(address)
            return false
        }
        m.device.read(offset: address - m.base, into: data)
        return true
    }

    @discardableResult
    public func write(_ address: UInt64, from data: UnsafeRawBufferPointer) -> Bool {
        guard let m = lookup(address) else {
            countUnclaimed(address)
            return false
        }
        m.device.write(offset: address - m.base, from: data)
        return true
    }
}

/// The x86 I/O port space (16-bit addresses).
public final class PortIOBus: DeviceBus {
    public init() { super.init(name: "port I/O") }
}

/// Guest-physical addresses with no memory slot behind them.
public final class MMIOBus: DeviceBus {
    public init() { super.init(name: "MMIO") }
}
