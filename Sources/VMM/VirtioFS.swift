/// virtio-fs (device ID 26, virtio 1.2 §5.11): FUSE requests from the guest's virtiofs driver
/// carried in descriptor chains (request, then room for the reply) and answered by an in-process
/// `FuseServer`. Queue 0 is the high-priority queue (FORGET, INTERRUPT), queues 1... carry
/// requests. Runs on the vCPU thread; one request at a time.
public final class VirtioFS: VirtioDevice {
    public static let deviceID: UInt32 = 26
    public static let hiprioQueue = 0
    public static let tagSize = 36

    public let deviceType: UInt32 = VirtioFS.deviceID
    public let offeredFeatures: UInt64 = 0
    public let queueMaxSizes: [UInt16]
    public let tag: String
    public let server: FuseServer
    /// Largest request read from a chain (a WRITE of max_write plus headers); more is cut off
    /// and then refused by the server as malformed.
    public var maxRequestSize: Int
    /// Chains rejected for breaking the rules (and why).
    public private(set) var rejected: [VirtqueueError] = []
    public private(set) var requestsServed = 0
    var queues: VirtioQueues?
    let config: [UInt8]

    /// `tag` is the name the guest mounts (`mount -t virtiofs TAG /mnt`): 1-36 bytes of UTF-8.
    public init(tag: String, server: FuseServer, requestQueues: Int = 1, queueSize: UInt16 = 256) throws(KvmError) {
        let t = Array(tag.utf8)
        guard !t.isEmpty, t.count <= VirtioFS.tagSize else {
            throw .invalidConfiguration("virtio-fs tag must be 1-\(VirtioFS.tagSize) bytes: \"\(tag)\"")
        }
        guard (1...64).contains(requestQueues) else { throw .invalidConfiguration("virtio-fs with \(requestQueues) request queues") }
        self.tag = tag
        self.server = server
        queueMaxSizes = [UInt16](repeating: queueSize, count: 1 + requestQueues)
        maxRequestSize = Int(server.options.maxWrite) + 4096
        var c = LittleEndianBytes(capacity: 40)
        c.raw(t); c.zeros(VirtioFS.tagSize - t.count)
        c.u32(UInt32(requestQueues))
        config = c.bytes
    }

    /// struct virtio_fs_config: tag[36], num_request_queues (le32).
    public func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        for i in data.indices {
            let o = offset + i
            data[i] = o >= 0 && o < config.count ? config[o] : 0
        }
    }

    public func writeConfig(offset: Int, from data: UnsafeRawBufferPointer) {}   // read-only

    public func activate(_ queues: VirtioQueues) { self.queues = queues }

    public func reset() { queues = nil }

    public func queueNotify(_ index: Int) {
        guard let q = queues, index < queueMaxSizes.count else { return }
        q.drain(queue: index, rejected: { self.rejected.append($0) }) { (chain) throws(VirtqueueError) -> UInt32 in
            let request: [UInt8]
            do { request = try chain.readAll(q.memory, limit: self.maxRequestSize) }
            catch { throw .bufferOutsideMemory(address: 0, length: 0) }
            self.requestsServed += 1
            guard let reply = self.server.handle(request, maxReplySize: chain.writableLength) else { return 0 }
            do { return UInt32(try chain.write(reply[...], into: q.memory)) }
            catch { throw .bufferOutsideMemory(address: 0, length: 0) }
        }
    }
}
