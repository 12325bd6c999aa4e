/// The guest's physical memory map as firmware reports it (e820 types): RAM below the MP table
/// in base memory, RAM from 1 MiB up to the MMIO gap, RAM above 4 GiB; the last KiB of base
/// memory (MP table) reserved. The legacy hole 0xa0000-0x100000 is left out (Linux reserves it).
public struct E820Entry: Sendable, Equatable, CustomStringConvertible {
    public static let ram: UInt32 = 1, reserved: UInt32 = 2

    public let address: UInt64
    public let size: UInt64
    public let type: UInt32

    public init(address: UInt64, size: UInt64, type: UInt32) {
        self.address = address; self.size = size; self.type = type
    }

    public var end: UInt64 { address + size }

    public var description: String {
        "[0x\(String(address, radix: 16))-0x\(String(end, radix: 16))) \(type == E820Entry.ram ? "RAM" : "type \(type)")"
    }
}

public enum E820Map {
    /// Entries for `memory`'s regions, sorted by address.
    public static func build(for memory: GuestMemory) -> [E820Entry] {
        var out: [E820Entry] = []
        let windows: [(UInt64, UInt64)] = [(0, X86Layout.mpTable), (X86Layout.highMemory, X86Layout.mmioGapStart),
                                           (X86Layout.mmioGapEnd, UInt64.max)]
        for r in memory.regions {
            for (lo, hi) in windows {
                let a = max(lo, r.guestBase), b = min(hi, r.guestEnd)
                if a < b { out.append(E820Entry(address: a, size: b - a, type: E820Entry.ram)) }
            }
            if r.guestBase <= X86Layout.mpTable, r.guestEnd >= X86Layout.baseMemoryEnd {
                out.append(E820Entry(address: X86Layout.mpTable, size: X86Layout.baseMemoryEnd - X86Layout.mpTable,
                                     type: E820Entry.reserved))
            }
        }
        return out.sorted { $0.address < $1.address }
    }

    /// The highest RAM address below the MMIO gap (exclusive): where top-down placement starts.
    public static func lowMemoryEnd(_ memory: GuestMemory) -> UInt64 {
        build(for: memory).filter { $0.type == E820Entry.ram && $0.end <= X86Layout.mmioGapStart }
            .map(\.end).max() ?? 0
    }
}
