/// The virtio-mmio transport, modern layout (version 2, virtio 1.2 §4.2.2), one device per
/// 0x1000-byte window. Registers are 32-bit and 4-byte aligned; other accesses to them read 0 and
/// are ignored. Device configuration starts at 0x100 and may be accessed in 1, 2, 4 or 8 bytes.
///
/// Threads: `read`/`write` (the vCPU thread's MMIO exits) and `notify(queue:)` (the I/O thread's
/// ioeventfds) take `lock`, and so must any other caller that touches the device (e.g. host input
/// to a console: `transport.lock.withLock { console.send(bytes) }`). The device, its queues and
/// its callbacks (`onOutput`, `onInterrupt`, ...) therefore run with the lock held, one thread at
/// a time; a callback must not take the same lock again.
public final class VirtioMMIOTransport: BusDevice {
    enum Reg {
        static let magic: UInt64 = 0x000, version: UInt64 = 0x004, deviceID: UInt64 = 0x008
        static let vendorID: UInt64 = 0x00c, deviceFeatures: UInt64 = 0x010, deviceFeaturesSel: UInt64 = 0x014
        static let driverFeatures: UInt64 = 0x020, driverFeaturesSel: UInt64 = 0x024
        static let queueSel: UInt64 = 0x030, queueNumMax: UInt64 = 0x034, queueNum: UInt64 = 0x038
        static let queueReady: UInt64 = 0x044, queueNotify: UInt64 = 0x050
        static let interruptStatus: UInt64 = 0x060, interruptACK: UInt64 = 0x064, status: UInt64 = 0x070
        static let queueDescLow: UInt64 = 0x080, queueDescHigh: UInt64 = 0x084
        static let queueDriverLow: UInt64 = 0x090, queueDriverHigh: UInt64 = 0x094
        static let queueDeviceLow: UInt64 = 0x0a0, queueDeviceHigh: UInt64 = 0x0a4
        static let shmSel: UInt64 = 0x0ac, shmLenLow: UInt64 = 0x0b0, shmBaseHigh: UInt64 = 0x0bc
        static let configGeneration: UInt64 = 0x0fc, config: UInt64 = 0x100
    }
    public static let magicValue: UInt32 = 0x7472_6976   // "virt"
    public static let version: UInt32 = 2
    public static let vendorID: UInt32 = 0x554d_4551     // "QEMU", what Linux expects to see
    public static let windowSize: UInt64 = 0x1000

    public let device: VirtioDevice
    public let memory: GuestMemory
    public let queues: [Virtqueue]
    public private(set) var status: UInt32 = 0
    public private(set) var interruptStatus: UInt32 = 0
    public private(set) var driverFeatures: UInt64 = 0
    public private(set) var activated = false
    /// The last fault a driver caused, for diagnostics.
    public private(set) var lastFault: VirtqueueError?
    var deviceFeaturesSel: UInt32 = 0
    var driverFeaturesSel: UInt32 = 0
    var queueSel: UInt32 = 0
    /// Raises the device's interrupt line (KVM_IRQ_LINE, or an irqfd with the I/O thread).
    public var onInterrupt: (() -> Void)?
    /// Guards the transport and its device (see the type's comment).
    public let lock = DeviceLock()
    /// Queue notifications that came as MMIO exits on the vCPU thread / through an ioeventfd.
    public private(set) var notifiesByExit = 0
    public private(set) var notifiesByEventFD = 0
    public private(set) var interruptsRaised = 0

    public init(device: VirtioDevice, memory: GuestMemory) {
        self.device = device
        self.memory = memory
        queues = device.queueMaxSizes.map { Virtqueue(maxSize: $0) }
    }

    public var offeredFeatures: UInt64 { device.offeredFeatures | Virtio.fVersion1 }

    var selectedQueue: Virtqueue? { Int(queueSel) < queues.count ? queues[Int(queueSel)] : nil }

    public func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        lock.withLock { readLocked(offset: offset, into: data) }
    }

    public func write(offset: UInt64, from data: UnsafeRawBufferPointer) {
        lock.withLock { writeLocked(offset: offset, from: data) }
    }

    /// The driver notified `queue` through an ioeventfd (called on the I/O thread).
    public func notify(queue: Int) {
        lock.withLock {
            guard activated, status & Virtio.statusNeedsReset == 0, queue < queues.count else { return }
            notifiesByEventFD += 1
            device.queueNotify(queue)
        }
    }

    func readLocked(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        for i in data.indices { data[i] = 0 }
        if offset >= Reg.config {
            device.readConfig(offset: Int(offset - Reg.config), into: data)
            return
        }
        guard data.count == 4, offset % 4 == 0 else { return }
        data.storeBytes(of: register(offset).littleEndian, as: UInt32.self)
    }

    func writeLocked(offset: UInt64, from data: UnsafeRawBufferPointer) {
        if offset >= Reg.config {
            device.writeConfig(offset: Int(offset - Reg.config), from: data)
            return
        }
        guard data.count == 4, offset % 4 == 0 else { return }
        setRegister(offset, UInt32(littleEndian: data.loadUnaligned(as: UInt32.self)))
    }

    func register(_ offset: UInt64) -> UInt32 {
        let q = selectedQueue
        switch offset {
        case Reg.magic: return VirtioMMIOTransport.magicValue
        case Reg.version: return VirtioMMIOTransport.version
        case Reg.deviceID: return device.deviceType
        case Reg.vendorID: return VirtioMMIOTransport.vendorID
        case Reg.deviceFeatures:
            return deviceFeaturesSel < 2 ? UInt32(truncatingIfNeeded: offeredFeatures >> (32 * UInt64(deviceFeaturesSel))) : 0
        case Reg.queueNumMax: return UInt32(q?.maxSize ?? 0)
        case Reg.queueNum: return UInt32(q?.size ?? 0)
        case Reg.queueReady: return q?.ready == true ? 1 : 0
        case Reg.interruptStatus: return interruptStatus
        case Reg.status: return status
        case Reg.queueDescLow: return UInt32(truncatingIfNeeded: q?.descTable ?? 0)
        case Reg.queueDescHigh: return UInt32(truncatingIfNeeded: (q?.descTable ?? 0) >> 32)
        case Reg.queueDriverLow: return UInt32(truncatingIfNeeded: q?.availRing ?? 0)
        case Reg.queueDriverHigh: return UInt32(truncatingIfNeeded: (q?.availRing ?? 0) >> 32)
        case Reg.queueDeviceLow: return UInt32(truncatingIfNeeded: q?.usedRing ?? 0)
        case Reg.queueDeviceHigh: return UInt32(truncatingIfNeeded: (q?.usedRing ?? 0) >> 32)
        case Reg.shmLenLow...Reg.shmBaseHigh: return 0xffff_ffff   // no shared memory regions
        case Reg.configGeneration: return 0
        default: return 0
        }
    }

    func setRegister(_ offset: UInt64, _ v: UInt32) {
        switch offset {
        case Reg.deviceFeaturesSel: deviceFeaturesSel = v
        case Reg.driverFeaturesSel: driverFeaturesSel = v
        case Reg.driverFeatures:
            // Features are fixed once FEATURES_OK is set.
            guard status & Virtio.statusFeaturesOK == 0, driverFeaturesSel < 2 else { return }
            let shift = 32 * UInt64(driverFeaturesSel)
            driverFeatures = (driverFeatures & ~(0xffff_ffff << shift)) | (UInt64(v) << shift)
        case Reg.queueSel: queueSel = v
        case Reg.queueNum, Reg.queueDescLow, Reg.queueDescHigh, Reg.queueDriverLow, Reg.queueDriverHigh,
             Reg.queueDeviceLow, Reg.queueDeviceHigh:
            // The spec forbids changing a live queue; ignore instead of trusting it.
            guard let q = selectedQueue, !q.ready, status & Virtio.statusDriverOK == 0 else { return }
            switch offset {
            case Reg.queueNum: q.size = UInt16(truncatingIfNeeded: v)
            case Reg.queueDescLow: q.descTable = replaceLow(q.descTable, v)
            case Reg.queueDescHigh: q.descTable = replaceHigh(q.descTable, v)
            case Reg.queueDriverLow: q.availRing = replaceLow(q.availRing, v)
            case Reg.queueDriverHigh: q.availRing = replaceHigh(q.availRing, v)
            case Reg.queueDeviceLow: q.usedRing = replaceLow(q.usedRing, v)
            default: q.usedRing = replaceHigh(q.usedRing, v)
            }
        case Reg.queueReady:
            guard let q = selectedQueue else { return }
            if v == 0 { q.reset(); return }
            guard !q.ready, status & Virtio.statusFeaturesOK != 0 else { return }
            do { try q.activate(memory) } catch { lastFault = error }   // stays not ready; the driver sees 0
        case Reg.queueNotify:
            guard activated, status & Virtio.statusNeedsReset == 0, Int(v) < queues.count else { return }
            notifiesByExit += 1
            device.queueNotify(Int(v))
        case Reg.interruptACK: interruptStatus &= ~v
        case Reg.status: setStatus(v)
        default: break
        }
    }

    func replaceLow(_ x: UInt64, _ v: UInt32) -> UInt64 { (x & 0xffff_ffff_0000_0000) | UInt64(v) }
    func replaceHigh(_ x: UInt64, _ v: UInt32) -> UInt64 { (x & 0xffff_ffff) | (UInt64(v) << 32) }

    func setStatus(_ v: UInt32) {
        if v == 0 { reset(); return }
        // Drivers only add bits; a write that clears one is a driver bug and is ignored.
        guard v & status == status else { return }
        var accepted = v
        let added = v & ~status
        if added & Virtio.statusFeaturesOK != 0 {
            let ok = driverFeatures & Virtio.fVersion1 != 0 && driverFeatures & ~offeredFeatures == 0
            if !ok { accepted &= ~Virtio.statusFeaturesOK }   // the driver reads it back and gives up
        }
        if added & Virtio.statusDriverOK != 0, accepted & Virtio.statusFeaturesOK == 0 {
            accepted &= ~Virtio.statusDriverOK
        }
        status = accepted
        if accepted & Virtio.statusDriverOK != 0, !activated {
            activated = true
            device.activate(VirtioQueues(
                memory: memory, queues: queues, ackedFeatures: driverFeatures,
                signal: { [unowned self] bits in raise(bits) },
                fault: { [unowned self] e in
                    lastFault = e
                    status |= Virtio.statusNeedsReset
                    raise(Virtio.interruptConfigChange)
                }))
        }
    }

    func raise(_ bits: UInt32) {
        interruptStatus |= bits
        interruptsRaised += 1
        onInterrupt?()
    }

    public func reset() {
        status = 0; interruptStatus = 0; driverFeatures = 0
        deviceFeaturesSel = 0; driverFeaturesSel = 0; queueSel = 0
        for q in queues { q.reset() }
        if activated { device.reset() }
        activated = false
    }

    /// The `virtio_mmio.device=` kernel parameter announcing this device to Linux.
    public static func kernelParameter(base: UInt64, irq: UInt32) -> String {
        "virtio_mmio.device=4K@0x\(String(base, radix: 16)):\(irq)"
    }
}
