/// Builds little-endian byte layouts (firmware tables, boot structures, wire messages).
public struct LittleEndianBytes: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public var count: Int { bytes.count }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { append(v) }
    public mutating func u32(_ v: UInt32) { append(v) }
    public mutating func u64(_ v: UInt64) { append(v) }

    mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// `text` as ASCII, padded with `pad` (or cut) to exactly `width` bytes.
    public mutating func ascii(_ text: String, width: Int, pad: UInt8 = 0x20) {
        let b = Array(text.utf8.prefix(width))
        bytes += b + [UInt8](repeating: pad, count: width - b.count)
    }

    public mutating func raw(_ b: [UInt8]) { bytes += b }
    public mutating func zeros(_ n: Int) { bytes += [UInt8](repeating: 0, count: n) }
    /// Pads with zeros to a multiple of `alignment`.
    public mutating func align(_ alignment: Int) {
        let r = bytes.count % alignment
        if r != 0 { zeros(alignment - r) }
    }

    public mutating func patch<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        withUnsafeBytes(of: v.littleEndian) { b in
            for i in 0..<b.count { bytes[offset + i] = b[i] }
        }
    }

    /// The byte that makes the sum of `bytes[range]` zero (MP/ACPI-style checksums).
    public func checksum(_ range: Range<Int>) -> UInt8 {
        var sum: UInt8 = 0
        for i in range { sum &+= bytes[i] }
        return 0 &- sum
    }
}
