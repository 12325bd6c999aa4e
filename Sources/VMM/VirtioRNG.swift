#if canImport(Glibc)
import Glibc
#endif
import CKVM

/// virtio-rng / entropy device (device ID 4, virtio 1.2 §5.4): one request queue; every
/// device-writable buffer the guest posts is filled from the host's getrandom(2).
public final class VirtioRNG: VirtioDevice {
    public static let deviceID: UInt32 = 4
    public let deviceType: UInt32 = VirtioRNG.deviceID
    public let offeredFeatures: UInt64 = 0
    public let queueMaxSizes: [UInt16]
    /// Largest number of bytes handed out per chain (a guest asking for more gets this much).
    public var maxBytesPerRequest = 64 << 10
    public private(set) var bytesServed = 0
    public private(set) var rejected: [VirtqueueError] = []
    /// Fills the buffer with random bytes; false on failure. getrandom(2) unless a test swaps it.
    let source: (UnsafeMutableRawBufferPointer) -> Bool
    var queues: VirtioQueues?

    public init(queueSize: UInt16 = 64, source: ((UnsafeMutableRawBufferPointer) -> Bool)? = nil) {
        queueMaxSizes = [queueSize]
        self.source = source ?? VirtioRNG.getrandom
    }

    static func getrandom(_ buffer: UnsafeMutableRawBufferPointer) -> Bool {
        var done = 0
        while done < buffer.count {
            let n = ckvm_getrandom(buffer.baseAddress! + done, buffer.count - done)
            if n < 0 { if errno == EINTR { continue }; return false }
            done += n
        }
        return true
    }

    public func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        for i in data.indices { data[i] = 0 }   // no configuration space
    }

    public func writeConfig(offset: Int, from data: UnsafeRawBufferPointer) {}
    public func activate(_ queues: VirtioQueues) { self.queues = queues; fill() }
    public func reset() { queues = nil }
    public func queueNotify(_ index: Int) { if index == 0 { fill() } }

    func fill() {
        guard let q = queues else { return }
        q.drain(queue: 0, rejected: { self.rejected.append($0) }) { (chain) throws(VirtqueueError) -> UInt32 in
            try chain.require(writable: true)
            var left = min(chain.writableLength, self.maxBytesPerRequest)
            var written = 0
            for b in chain.writable where left > 0 {
                let n = min(Int(b.length), left)
                // Random bytes go straight into guest memory (the range was validated with the chain).
                guard let p = q.memory.hostPointer(b.address, length: n),
                      self.source(UnsafeMutableRawBufferPointer(start: p, count: n)) else { break }
                written += n
                left -= n
            }
            self.bytesServed += written
            return UInt32(written)
        }
    }
}
