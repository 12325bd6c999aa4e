#if canImport(Glibc)
import Glibc
#endif

/// virtio-net (device ID 1, virtio 1.2 §5.1): one receiveq (0) / transmitq (1) pair over a frame
/// descriptor, normally a tap opened with IFF_VNET_HDR whose header size is set to 12
/// (`TapBridge.prepareTap`); in tests any descriptor that keeps frame boundaries (a
/// SOCK_SEQPACKET socketpair). Each read or write on it is one frame: a 12-byte
/// `virtio_net_hdr_v1`, then the Ethernet frame.
///
/// No offloads are offered (no CSUM, GSO, MRG_RXBUF), so the header carries nothing: the device
/// hands the tap a zero header whatever the guest wrote in its own (the guest cannot make the
/// host kernel act on checksum or segmentation requests it never negotiated), and gives the guest
/// a zero header with num_buffers 1 (virtio 1.x requires it without MRG_RXBUF). Each received
/// frame takes one chain.
///
/// Runs with the transport's lock held, like every device. Receiving: the I/O thread polls the
/// descriptor only while the guest has receive buffers posted (`pollEvents`) and no frame is
/// waiting; a frame read while buffers run out waits in `pending` until the guest posts more (its
/// receiveq notify), so an idle or starved queue costs no CPU and no frame is lost to it.
public final class VirtioNet: VirtioDevice {
    public static let deviceID: UInt32 = 1
    public static let receiveQueue = 0, transmitQueue = 1
    /// struct virtio_net_hdr_v1: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers.
    public static let headerSize = 12
    static let numBuffersOffset = 10
    /// Largest frame accepted either way, header included: a 64 KiB frame plus Ethernet/VLAN
    /// headers. Without GSO real frames are MTU-sized; this only bounds a hostile or odd one.
    public static let maxFrameSize = headerSize + 65550
    /// Shortest transmit chain: the header and an Ethernet header (the tap refuses less anyway).
    public static let minFrameSize = headerSize + 14
    /// Frames moved per `receive()`, so one busy interface cannot hold the I/O thread.
    public static let receiveBudget = 64

    public static let fMTU: UInt64 = 1 << 3
    public static let fMAC: UInt64 = 1 << 5
    public static let fStatus: UInt64 = 1 << 16
    public static let statusLinkUp: UInt16 = 1

    public let deviceType: UInt32 = VirtioNet.deviceID
    public let offeredFeatures: UInt64
    public let queueMaxSizes: [UInt16]
    /// The frame descriptor (made non-blocking here; not closed here: its owner closes it).
    public let fd: Int32
    public let mac: [UInt8]
    /// The MTU offered to the guest (VIRTIO_NET_F_MTU), 0 for none.
    public let mtu: UInt16

    /// Called when the guest posts receive buffers while a frame waits or the descriptor is not
    /// polled: the I/O thread re-evaluates `pollEvents` (needed when the notify came by a vCPU exit).
    public var onReceiveBuffersPosted: (() -> Void)?

    public struct Counters: Equatable, Sendable {
        public var framesSent = 0, framesReceived = 0
        /// Guest frames that were malformed (too short or too long) or that the descriptor refused.
        public var transmitDropped = 0
        /// Host frames that did not fit the guest's buffer, were too long, or carried GSO.
        public var receiveDropped = 0
        /// Chains rejected for breaking the virtqueue rules.
        public var chainsRejected = 0
    }
    public private(set) var counters = Counters()
    public private(set) var lastRejection: VirtqueueError?
    /// The descriptor failed on read (tap gone): it is no longer polled.
    public private(set) var backendError: Int32?

    var queues: VirtioQueues?
    /// One frame as read from the descriptor (header + frame); `pendingLength` > 0 while it waits
    /// for a receive buffer.
    var scratch: UnsafeMutableRawBufferPointer
    var pendingLength = 0
    /// The header written to the descriptor before every transmitted frame: all zeros.
    let zeroHeader: UnsafeMutableRawBufferPointer
    var iovecs: [iovec]

    public init(fd: Int32, mac: [UInt8], mtu: UInt16 = 0, queueSize: UInt16 = 256) {
        precondition(mac.count == 6, "a MAC has 6 bytes")
        self.fd = fd; self.mac = mac; self.mtu = mtu
        queueMaxSizes = [queueSize, queueSize]
        offeredFeatures = VirtioNet.fMAC | VirtioNet.fStatus | (mtu > 0 ? VirtioNet.fMTU : 0)
        scratch = .allocate(byteCount: VirtioNet.maxFrameSize + 1, alignment: 16)
        zeroHeader = .allocate(byteCount: VirtioNet.headerSize, alignment: 16)
        zeroHeader.initializeMemory(as: UInt8.self, repeating: 0)
        iovecs = [iovec](repeating: iovec(), count: Int(queueSize) + 1)
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    deinit {
        scratch.deallocate()
        zeroHeader.deallocate()
    }

    /// struct virtio_net_config: mac[6], status, max_virtqueue_pairs, mtu (little-endian).
    var configBytes: [UInt8] {
        let status = VirtioNet.statusLinkUp
        return mac + [UInt8(status & 0xff), UInt8(status >> 8), 1, 0, UInt8(mtu & 0xff), UInt8(mtu >> 8)]
    }

    public func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        let c = configBytes
        for i in data.indices { data[i] = offset + i < c.count ? c[offset + i] : 0 }
    }

    /// The MAC is read-only without VIRTIO_NET_F_CTRL_MAC_ADDR (not offered).
    public func writeConfig(offset: Int, from data: UnsafeRawBufferPointer) {}

    public func activate(_ queues: VirtioQueues) {
        self.queues = queues
        transmit()
        receive()
    }

    public func reset() {
        queues = nil
        pendingLength = 0   // a frame for the old driver means nothing to the next one
    }

    public func queueNotify(_ index: Int) {
        switch index {
        case VirtioNet.receiveQueue:
            receive()
            onReceiveBuffersPosted?()
        case VirtioNet.transmitQueue: transmit()
        default: break
        }
    }

    /// poll(2) events for the descriptor: POLLIN only while a frame could be delivered at once.
    public func pollEvents() -> Int16 {
        guard backendError == nil, pendingLength == 0, let q = queues,
              q.queues[VirtioNet.receiveQueue].hasAvailable(q.memory) else { return 0 }
        return Int16(POLLIN)
    }

    func rejected(_ e: VirtqueueError) {
        counters.chainsRejected += 1
        lastRejection = e
    }

    // MARK: transmit (guest to host)

    func transmit() {
        guard let q = queues else { return }
        q.drain(queue: VirtioNet.transmitQueue, rejected: rejected) { (chain) throws(VirtqueueError) -> UInt32 in
            try chain.require(writable: false)
            self.send(chain, q.memory)
            return 0
        }
    }

    /// Writes one frame: the zero header, then the guest's bytes after its own header, gathered
    /// straight from guest memory (the ranges were validated with the chain).
    func send(_ chain: DescriptorChain, _ memory: GuestMemory) {
        let total = chain.readableLength
        guard (VirtioNet.minFrameSize...VirtioNet.maxFrameSize).contains(total) else {
            counters.transmitDropped += 1
            return
        }
        iovecs[0] = iovec(iov_base: zeroHeader.baseAddress, iov_len: VirtioNet.headerSize)
        var count = 1
        var skip = VirtioNet.headerSize
        for b in chain.buffers {
            let length = Int(b.length)
            if skip >= length { skip -= length; continue }
            guard let p = memory.hostPointer(b.address, length: length) else {
                counters.transmitDropped += 1
                return
            }
            iovecs[count] = iovec(iov_base: p + skip, iov_len: length - skip)
            count += 1
            skip = 0
        }
        var n: Int
        repeat { n = writev(fd, iovecs, Int32(count)) } while n < 0 && errno == EINTR
        // A full or downed tap drops the frame, as a NIC would; the guest's stack retransmits.
        if n == total { counters.framesSent += 1 } else { counters.transmitDropped += 1 }
    }

    // MARK: receive (host to guest)

    /// Moves frames from the descriptor into receive buffers while both are there (at most
    /// `receiveBudget` per call); a frame that finds no buffer stays pending.
    func receive() {
        guard let q = queues else { return }
        let rx = q.queues[VirtioNet.receiveQueue]
        var budget = VirtioNet.receiveBudget
        q.drain(queue: VirtioNet.receiveQueue,
                while: { budget > 0 && (self.pendingLength > 0 || (rx.hasAvailable(q.memory) && self.readFrame())) },
                rejected: rejected) { (chain) throws(VirtqueueError) -> UInt32 in
            try chain.require(writable: true)
            budget -= 1
            let length = self.pendingLength
            self.pendingLength = 0
            guard chain.writableLength >= length else {
                // The guest posted less than the frame needs: drop the frame, return the buffer empty.
                self.counters.receiveDropped += 1
                return 0
            }
            self.deliver(length, into: chain, q.memory)
            self.counters.framesReceived += 1
            return UInt32(length)
        }
    }

    /// Reads the next frame into `scratch`; false when none is there (or the descriptor failed).
    func readFrame() -> Bool {
        while true {
            let n = read(fd, scratch.baseAddress, scratch.count)
            if n < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN && errno != EWOULDBLOCK { backendError = errno }
                return false
            }
            if n == 0 { backendError = 0; return false }   // a socket peer went away
            // Too short or too long (cut at maxFrameSize + 1), or GSO the guest did not negotiate.
            if n < VirtioNet.headerSize || n > VirtioNet.maxFrameSize || scratch[1] != 0 {
                counters.receiveDropped += 1
                continue
            }
            for i in 0..<VirtioNet.headerSize { scratch[i] = 0 }
            scratch[VirtioNet.numBuffersOffset] = 1
            pendingLength = n
            return true
        }
    }

    /// Scatters the pending frame over the chain's writable buffers (which hold all of it).
    func deliver(_ length: Int, into chain: DescriptorChain, _ memory: GuestMemory) {
        var done = 0
        for b in chain.buffers where done < length {
            let n = min(Int(b.length), length - done)
            guard let p = memory.hostPointer(b.address, length: n) else { return }
            memcpy(p, scratch.baseAddress! + done, n)
            done += n
        }
    }
}
