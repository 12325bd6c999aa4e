/// virtio-console (device ID 3) with a single port: receiveq (0) carries host-to-guest bytes,
/// transmitq (1) guest-to-host bytes. No multiport, so the agent protocol runs over it as a plain
/// byte stream. Runs on the vCPU thread: `send` queues bytes and delivers what fits into
/// buffers the guest has posted; the rest goes out as the guest posts more.
public final class VirtioConsole: VirtioDevice {
    public static let receiveQueue = 0, transmitQueue = 1
    public let deviceType: UInt32 = 3
    public let offeredFeatures: UInt64 = 0
    public let queueMaxSizes: [UInt16]

    /// Guest-to-host bytes, one call per transmit chain.
    public var onOutput: (([UInt8]) -> Void)?
    /// Chains rejected for breaking the rules (and why), for diagnostics and tests.
    public private(set) var rejected: [VirtqueueError] = []
    public private(set) var pendingInput: [UInt8] = []
    var queues: VirtioQueues?

    public init(queueSize: UInt16 = 256) { queueMaxSizes = [queueSize, queueSize] }

    public func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        // cols, rows, max_nr_ports, emerg_wr: all zero (no size/multiport/emergency-write features).
        for i in data.indices { data[i] = 0 }
    }

    public func writeConfig(offset: Int, from data: UnsafeRawBufferPointer) {}

    public func activate(_ queues: VirtioQueues) {
        self.queues = queues
        deliverInput()
    }

    public func queueNotify(_ index: Int) {
        switch index {
        case VirtioConsole.receiveQueue: deliverInput()
        case VirtioConsole.transmitQueue: drainOutput()
        default: break
        }
    }

    public func reset() { queues = nil }

    /// Queues host-to-guest bytes and delivers what the guest has room for.
    public func send(_ bytes: [UInt8]) {
        pendingInput += bytes
        deliverInput()
    }

    func deliverInput() {
        guard let q = queues, !pendingInput.isEmpty else { return }
        var sent = 0
        q.drain(queue: VirtioConsole.receiveQueue, while: { sent < self.pendingInput.count },
                rejected: { self.rejected.append($0) }) { (chain) throws(VirtqueueError) -> UInt32 in
            try chain.require(writable: true)
            let n: Int
            do { n = try chain.write(self.pendingInput[sent...], into: q.memory) }
            catch { throw .bufferOutsideMemory(address: 0, length: 0) }
            sent += n
            return UInt32(n)
        }
        pendingInput.removeFirst(sent)
    }

    func drainOutput() {
        guard let q = queues else { return }
        q.drain(queue: VirtioConsole.transmitQueue, rejected: { self.rejected.append($0) }) { (chain) throws(VirtqueueError) -> UInt32 in
            try chain.require(writable: false)
            let bytes: [UInt8]
            do { bytes = try chain.readAll(q.memory) } catch { throw .bufferOutsideMemory(address: 0, length: 0) }
            if !bytes.isEmpty { self.onOutput?(bytes) }
            return 0
        }
    }
}
