#if canImport(Glibc)
import Glibc
#endif
import CKVM

/// Puts a `VirtioNet`'s frame descriptor (its tap) on the I/O thread: the descriptor is polled
/// for input only while the device can deliver a frame (`VirtioNet.pollEvents`), and a receive
/// buffer posted through a vCPU exit wakes the loop so that it polls again. Transmission needs no
/// polling: it happens on the guest's transmitq notify. Everything that touches the device holds
/// the transport's lock. This object does not close the descriptor.
public final class TapBridge: @unchecked Sendable {
    public let device: VirtioNet
    public let transport: VirtioMMIOTransport

    public init(device: VirtioNet, transport: VirtioMMIOTransport, ioThread: IOThread) {
        self.device = device; self.transport = transport
        transport.lock.withLock {
            device.onReceiveBuffersPosted = { [weak ioThread] in ioThread?.wake() }
        }
        // The I/O thread's sources go with it (it stops before the transports are released).
        ioThread.add(fd: device.fd, events: { transport.lock.withLock { device.pollEvents() } }) { _ in
            transport.lock.withLock { device.receive() }
        }
    }

    /// Readies a tap (opened with IFF_VNET_HDR) for `VirtioNet`: its header becomes the 12-byte
    /// virtio 1.x one (the tap's default is the 10-byte legacy header).
    public static func prepareTap(_ fd: Int32) throws(KvmError) {
        _ = try KvmError.check(ckvm_tap_set_vnet_header_size(fd, Int32(VirtioNet.headerSize)), "TUNSETVNETHDRSZ")
    }
}
