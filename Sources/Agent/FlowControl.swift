/// Credit-based flow control per (stream, fd): a sender may have at most `window`
/// bytes in flight; the receiver returns credit as it drains them. A slow reader on
/// one stream therefore never stalls the channel or grows memory without bound.
public struct SendWindow {
    public static let initial = 256 * 1024
    public static let maxChunk = 32 * 1024
    var credit: [UInt64: Int] = [:]
    public init() {}

    static func key(_ stream: UInt32, fd: UInt8) -> UInt64 { UInt64(stream) << 8 | UInt64(fd) }

    public func available(_ stream: UInt32, fd: UInt8) -> Int { credit[Self.key(stream, fd: fd)] ?? Self.initial }
    /// How many bytes may be read from the source and sent now.
    public func chunk(_ stream: UInt32, fd: UInt8) -> Int { min(available(stream, fd: fd), Self.maxChunk) }
    public mutating func spend(_ stream: UInt32, fd: UInt8, _ n: Int) {
        credit[Self.key(stream, fd: fd)] = available(stream, fd: fd) - n
    }
    public mutating func grant(_ stream: UInt32, fd: UInt8, _ n: Int) {
        credit[Self.key(stream, fd: fd)] = min(available(stream, fd: fd) + n, Self.initial * 4)
    }
    /// Drops every fd's window of `stream` (stdio and preserved fds alike).
    public mutating func forget(_ stream: UInt32) {
        credit = credit.filter { $0.key >> 8 != UInt64(stream) }
    }
}

/// A (stream, fd) pair as one dictionary key.
public enum StreamKey {
    public static func of(_ stream: UInt32, _ fd: UInt8) -> UInt64 { UInt64(stream) << 8 | UInt64(fd) }
}
