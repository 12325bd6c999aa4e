#if canImport(Glibc)
import Glibc
#endif

/// A failed FUSE request: the errno the reply carries (negated on the wire).
public struct FuseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let errno: Int32
    public init(_ errno: Int32) { self.errno = errno }
    public var description: String { "\(String(cString: strerror(errno))) (errno \(errno))" }

    static let invalid = FuseError(EINVAL), notFound = FuseError(ENOENT), io = FuseError(EIO)
    static let notSupported = FuseError(ENOSYS), badHandle = FuseError(EBADF), denied = FuseError(EACCES)

    /// The current errno as a FuseError.
    static var last: FuseError { FuseError(Glibc.errno) }
}

/// `struct fuse_in_header`.
public struct FuseRequestHeader: Sendable, Equatable {
    public let length: UInt32
    public let opcode: UInt32
    public let unique: UInt64
    public let nodeID: UInt64
    public let uid: UInt32
    public let gid: UInt32
    public let pid: UInt32
}

/// Bounds-checked little-endian reads from a request body that came from the guest.
struct FuseReader {
    let bytes: [UInt8]
    private(set) var offset: Int
    let end: Int

    init(_ bytes: [UInt8], from offset: Int = 0, end: Int? = nil) {
        self.bytes = bytes; self.offset = offset; self.end = min(end ?? bytes.count, bytes.count)
    }

    var remaining: Int { end - offset }

    mutating func integer<T: FixedWidthInteger>(_: T.Type = T.self) throws(FuseError) -> T {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { throw .invalid }
        defer { offset += n }
        return bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    mutating func u32() throws(FuseError) -> UInt32 { try integer() }
    mutating func u64() throws(FuseError) -> UInt64 { try integer() }

    /// Skips `n` bytes (padding, or fields of a newer layout this server ignores).
    mutating func skip(_ n: Int) throws(FuseError) {
        guard n >= 0, remaining >= n else { throw .invalid }
        offset += n
    }

    /// A NUL-terminated string (path component or symlink target), without the NUL.
    mutating func cString(max: Int) throws(FuseError) -> [UInt8] {
        var i = offset
        while i < end, bytes[i] != 0 { i += 1 }
        guard i < end, i - offset <= max else { throw i - offset > max ? FuseError(ENAMETOOLONG) : .invalid }
        defer { offset = i + 1 }
        return Array(bytes[offset..<i])
    }

    /// `n` raw bytes (write payload).
    mutating func data(_ n: Int) throws(FuseError) -> ArraySlice<UInt8> {
        guard n >= 0, remaining >= n else { throw .invalid }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }
}

enum FuseWire {
    /// Parses the header; nil when there is not even a whole header (no reply is possible).
    static func header(_ bytes: [UInt8]) -> FuseRequestHeader? {
        guard bytes.count >= Fuse.inHeaderSize else { return nil }
        var r = FuseReader(bytes)
        guard let len = try? r.u32(), let op = try? r.u32(), let unique = try? r.u64(), let node = try? r.u64(),
              let uid = try? r.u32(), let gid = try? r.u32(), let pid = try? r.u32() else { return nil }
        return FuseRequestHeader(length: len, opcode: op, unique: unique, nodeID: node, uid: uid, gid: gid, pid: pid)
    }

    /// `struct fuse_out_header` followed by `body`.
    static func reply(unique: UInt64, error: Int32 = 0, body: [UInt8] = []) -> [UInt8] {
        var b = LittleEndianBytes(capacity: Fuse.outHeaderSize + body.count)
        b.u32(UInt32(Fuse.outHeaderSize + body.count))
        b.u32(UInt32(bitPattern: error == 0 ? 0 : -error))
        b.u64(unique)
        b.raw(body)
        return b.bytes
    }
}
