/// Little-endian binary encoding for agent messages. Every read is bounds-checked:
/// a peer's bytes are never trusted.
public struct WireError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

public struct WireWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func blob(_ v: [UInt8]) { u32(UInt32(v.count)); bytes.append(contentsOf: v) }
    public mutating func string(_ v: String) { blob(Array(v.utf8)) }
    public mutating func strings(_ v: [String]) { u32(UInt32(v.count)); for s in v { string(s) } }
}

public struct WireReader {
    let bytes: [UInt8]
    var at: Int
    public init(_ bytes: [UInt8], at: Int = 0) { self.bytes = bytes; self.at = at }
    public var remaining: Int { bytes.count - at }

    mutating func take(_ n: Int) throws(WireError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw WireError("message truncated: need \(n) bytes, have \(remaining)") }
        defer { at += n }
        return bytes[at..<at + n]
    }
    public mutating func u8() throws(WireError) -> UInt8 { try take(1).first! }
    public mutating func bool() throws(WireError) -> Bool { try u8() != 0 }
    public mutating func u32() throws(WireError) -> UInt32 {
        let s = try take(4)
        return s.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
    public mutating func i32() throws(WireError) -> Int32 { Int32(bitPattern: try u32()) }
    public mutating func u64() throws(WireError) -> UInt64 {
        let s = try take(8)
        return s.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
    public mutating func blob() throws(WireError) -> [UInt8] { Array(try take(Int(try u32()))) }
    public mutating func string() throws(WireError) -> String { String(decoding: try blob(), as: UTF8.self) }
    public mutating func strings() throws(WireError) -> [String] {
        let n = Int(try u32())
        guard n <= remaining / 4 else { throw WireError("string list count \(n) exceeds message size") }
        var out: [String] = []
        for _ in 0..<n { out.append(try string()) }
        return out
    }
}
