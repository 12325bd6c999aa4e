/// A validated descriptor chain: every buffer lies inside guest memory and the readable buffers
/// come before the writable ones. Addresses were copied out of guest memory once.
public struct DescriptorChain: Sendable, Equatable {
    public struct Buffer: Sendable, Equatable {
        public let address: UInt64
        public let length: UInt32
        public let writable: Bool
    }

    public let head: UInt16
    public let buffers: [Buffer]

    public var readable: [Buffer] { buffers.filter { !$0.writable } }
    public var writable: [Buffer] { buffers.filter { $0.writable } }
    public var readableLength: Int { readable.reduce(0) { $0 + Int($1.length) } }
    public var writableLength: Int { writable.reduce(0) { $0 + Int($1.length) } }

    /// Throws `.wrongDirection` unless every buffer has the given direction.
    public func require(writable w: Bool) throws(VirtqueueError) {
        if buffers.contains(where: { $0.writable != w }) { throw .wrongDirection(expectedWritable: w) }
    }

    /// Gathers the readable buffers, at most `limit` bytes.
    public func readAll(_ memory: GuestMemory, limit: Int = 1 << 20) throws(KvmError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(readableLength, limit))
        for b in readable where out.count < limit {
            out += try memory.read(b.address, count: min(Int(b.length), limit - out.count))
        }
        return out
    }

    /// Scatters `bytes` into the writable buffers; returns how many bytes fitted.
    public func write(_ bytes: ArraySlice<UInt8>, into memory: GuestMemory) throws(KvmError) -> Int {
        var done = 0
        for b in writable where done < bytes.count {
            let n = min(Int(b.length), bytes.count - done)
            let start = bytes.startIndex + done
            try memory.write(b.address, Array(bytes[start..<start + n]))
            done += n
        }
        return done
    }
}
