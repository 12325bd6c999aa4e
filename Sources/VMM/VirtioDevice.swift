/// Feature bits and status values shared by every virtio device (virtio 1.2 §2, §6).
public enum Virtio {
    public static let fVersion1: UInt64 = 1 << 32
    public static let statusAcknowledge: UInt32 = 1
    public static let statusDriver: UInt32 = 2
    public static let statusDriverOK: UInt32 = 4
    public static let statusFeaturesOK: UInt32 = 8
    public static let statusNeedsReset: UInt32 = 0x40
    public static let statusFailed: UInt32 = 0x80
    public static let interruptUsedBuffer: UInt32 = 1
    public static let interruptConfigChange: UInt32 = 2
}

/// What a device gets when the driver sets DRIVER_OK: its queues, guest memory, and a way to
/// tell the driver about used buffers. Every call happens with the transport's `lock` held (on the
/// vCPU thread for register accesses, on the I/O thread for ioeventfd notifications).
public final class VirtioQueues {
    public let memory: GuestMemory
    public let queues: [Virtqueue]
    public let ackedFeatures: UInt64
    let signal: (UInt32) -> Void
    let fault: (VirtqueueError) -> Void

    init(memory: GuestMemory, queues: [Virtqueue], ackedFeatures: UInt64,
         signal: @escaping (UInt32) -> Void, fault: @escaping (VirtqueueError) -> Void) {
        self.memory = memory; self.queues = queues; self.ackedFeatures = ackedFeatures
        self.signal = signal; self.fault = fault
    }

    /// Raises the used-buffer interrupt unless the driver suppressed it on `queue`.
    public func notifyUsed(queue: Int) {
        if queues[queue].wantsInterrupt(memory) { signal(Virtio.interruptUsedBuffer) }
    }

    /// The queue is unusable: the transport sets DEVICE_NEEDS_RESET and tells the driver.
    public func reportBroken(_ e: VirtqueueError) { fault(e) }

    /// Pops available chains on `queue` while `more()` holds and hands valid ones to `body`,
    /// which returns the number of bytes it wrote; rejected chains (or chains `body` throws on)
    /// go back with length 0 and are passed to `rejected`. Returns how many chains were used.
    @discardableResult
    public func drain(queue: Int, while more: () -> Bool = { true },
                      rejected: (VirtqueueError) -> Void = { _ in },
                      _ body: (DescriptorChain) throws(VirtqueueError) -> UInt32) -> Int {
        let q = queues[queue]
        guard q.ready else { return 0 }
        var returned = 0
        do {
            while more(), let entry = try q.popAvailable(memory) {
                switch entry {
                case .rejected(let head, let why):
                    rejected(why)
                    try q.addUsed(memory, head: head, length: 0)
                case .chain(let chain):
                    var length: UInt32 = 0
                    do { length = try body(chain) } catch { rejected(error) }
                    try q.addUsed(memory, head: chain.head, length: length)
                }
                returned += 1
            }
        } catch {
            rejected(error)
            reportBroken(error)
        }
        if returned > 0 { notifyUsed(queue: queue) }
        return returned
    }
}

/// A virtio device behind a transport.
public protocol VirtioDevice: AnyObject {
    /// Virtio device ID (3 = console).
    var deviceType: UInt32 { get }
    /// Device-specific features offered; the transport adds VIRTIO_F_VERSION_1.
    var offeredFeatures: UInt64 { get }
    var queueMaxSizes: [UInt16] { get }
    /// Device configuration space (read through the transport at offset 0x100).
    func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer)
    func writeConfig(offset: Int, from data: UnsafeRawBufferPointer)
    /// The driver set DRIVER_OK.
    func activate(_ queues: VirtioQueues)
    /// The driver wrote QueueNotify.
    func queueNotify(_ index: Int)
    /// The driver wrote 0 to Status: forget the queues.
    func reset()
}
