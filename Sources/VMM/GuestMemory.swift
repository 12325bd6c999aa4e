#if canImport(Glibc)
import Glibc
#endif

/// Guest RAM: anonymous host mappings, each placed at a guest-physical base.
///
/// Every access takes a guest-physical address that may come from the guest and so is never
/// trusted: the whole range must lie inside one region (checked with overflow-safe arithmetic)
/// or the access throws. Values are copied out once, so a guest changing memory concurrently
/// cannot change what was validated. Memory needs no KVM: tests use it as a synthetic buffer.
public final class GuestMemory: @unchecked Sendable {
    public struct Region: @unchecked Sendable {
        public let guestBase: UInt64
        public let size: Int
        public let host: UnsafeMutableRawPointer
        public var guestEnd: UInt64 { guestBase + UInt64(size) }
    }

    public let regions: [Region]

    /// One region of `size` bytes at guest-physical 0.
    public convenience init(size: Int) throws(KvmError) {
        try self.init(layout: [(0, size)])
    }

    /// Regions at the given guest-physical bases; sizes must be page multiples, no overlap.
    public init(layout: [(base: UInt64, size: Int)]) throws(KvmError) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let sorted = layout.sorted { $0.base < $1.base }
        var made: [Region] = []
        var end: UInt64 = 0
        for (base, size) in sorted {
            guard size > 0, size % page == 0, base % UInt64(page) == 0, base >= end,
                  !base.addingReportingOverflow(UInt64(size)).overflow else {
                for r in made { munmap(r.host, r.size) }
                throw .invalidConfiguration("invalid guest memory region 0x\(String(base, radix: 16))+\(size)")
            }
            let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let p, p != MAP_FAILED else {
                let e = errno
                for r in made { munmap(r.host, r.size) }
                throw .syscall("mmap guest memory (\(size) bytes)", errno: e)
            }
            made.append(Region(guestBase: base, size: size, host: p))
            end = base + UInt64(size)
        }
        regions = made
    }

    deinit { for r in regions { munmap(r.host, r.size) } }

    public var totalSize: Int { regions.reduce(0) { $0 + $1.size } }

    /// The host address of [address, address+length) if it lies entirely inside one region.
    public func hostPointer(_ address: UInt64, length: Int) -> UnsafeMutableRawPointer? {
        guard length >= 0 else { return nil }
        let (end, overflow) = address.addingReportingOverflow(UInt64(length))
        if overflow { return nil }
        for r in regions where address >= r.guestBase && end <= r.guestEnd {
            return r.host + Int(address - r.guestBase)
        }
        return nil
    }

    public func contains(_ address: UInt64, length: Int) -> Bool {
        hostPointer(address, length: length) != nil
    }

    func checked(_ address: UInt64, _ length: Int) throws(KvmError) -> UnsafeMutableRawPointer {
        guard let p = hostPointer(address, length: length) else {
            throw .outOfGuestMemory(address: address, length: length)
        }
        return p
    }

    public func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(KvmError) {
        let p = try checked(address, buffer.count)
        if let dst = buffer.baseAddress { memcpy(dst, p, buffer.count) }
    }

    public func read(_ address: UInt64, count: Int) throws(KvmError) -> [UInt8] {
        let p = try checked(address, count)
        return [UInt8](UnsafeRawBufferPointer(start: p, count: count))
    }

    public func write(_ address: UInt64, from buffer: UnsafeRawBufferPointer) throws(KvmError) {
        let p = try checked(address, buffer.count)
        if let src = buffer.baseAddress { memcpy(p, src, buffer.count) }
    }

    public func write(_ address: UInt64, _ bytes: [UInt8]) throws(KvmError) {
        let p = try checked(address, bytes.count)
        bytes.withUnsafeBytes { b in if let s = b.baseAddress { _ = memcpy(p, s, b.count) } }
    }

    /// Little-endian integer load; no alignment requirement.
    public func load<T: FixedWidthInteger>(_ address: UInt64, as: T.Type = T.self) throws(KvmError) -> T {
        let p = try checked(address, MemoryLayout<T>.size)
        return T(littleEndian: p.loadUnaligned(as: T.self))
    }

    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(KvmError) {
        let p = try checked(address, MemoryLayout<T>.size)
        p.storeBytes(of: value.littleEndian, as: T.self)
    }

    public func fill(_ address: UInt64, count: Int, byte: UInt8 = 0) throws(KvmError) {
        let p = try checked(address, count)
        memset(p, Int32(byte), count)
    }

    /// Bytes of guest memory currently resident in the host (mincore), for RSS accounting.
    public func residentBytes() -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var total = 0
        for r in regions {
            var vec = [UInt8](repeating: 0, count: (r.size + page - 1) / page)
            if mincore(r.host, r.size, &vec) == 0 {
                total += vec.reduce(0) { $0 + Int($1 & 1) } * page
            }
        }
        return total
    }
}
