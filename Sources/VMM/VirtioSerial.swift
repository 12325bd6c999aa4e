/// A host-side byte stream into a guest device (`VirtioConsole`, or a `VirtioSerial` port) that
/// `ConsoleSocket` can bridge to a file descriptor. All members are used with the device's
/// transport lock held.
public protocol HostByteStream: AnyObject {
    /// Queues host-to-guest bytes; they are delivered when the guest has room (and, for a
    /// serial port, has opened it).
    func send(_ bytes: [UInt8])
    /// Host-to-guest bytes not yet delivered.
    var pendingInputCount: Int { get }
    /// Guest-to-host bytes, one call per transmit chain.
    var onOutput: (([UInt8]) -> Void)? { get set }
}

extension VirtioConsole: HostByteStream {
    public var pendingInputCount: Int { pendingInput.count }
}

/// virtio-console with VIRTIO_CONSOLE_F_MULTIPORT (virtio 1.2 §5.3.6.2): what QEMU calls
/// virtio-serial. Named ports appear in the guest as /dev/vportNpM with
/// /sys/class/virtio-ports/vportNpM/name, which is how the guest finds its "agent" port (and the
/// same guest works with the QEMU backend's `virtserialport,name=agent`).
///
/// Port ids start at 1 like QEMU's (port 0 is the console port there; here it is unused), so
/// the queues are: 0/1 port 0, 2/3 control receive/transmit, then 2 per port. Control protocol:
/// the driver sends DEVICE_READY; the device sends DEVICE_ADD per port; the driver answers
/// PORT_READY; the device sends PORT_NAME and PORT_OPEN (the host side is always connected).
/// Host-to-guest bytes are held until the guest opens the port (its PORT_OPEN 1): Linux discards
/// data that reaches a closed port. A driver that does not negotiate MULTIPORT gets the first
/// port on queues 0/1 as a plain console.
public final class VirtioSerial: VirtioDevice {
    public static let fMultiport: UInt64 = 1 << 1
    public static let controlReceiveQueue = 2, controlTransmitQueue = 3
    enum Event {
        static let deviceReady: UInt16 = 0, deviceAdd: UInt16 = 1, portReady: UInt16 = 3
        static let consolePort: UInt16 = 4, portOpen: UInt16 = 6, portName: UInt16 = 7
    }

    public final class Port: HostByteStream {
        public let id: UInt32
        public let name: String
        public internal(set) var guestOpen = false
        public internal(set) var pendingInput: [UInt8] = []
        public var onOutput: (([UInt8]) -> Void)?
        weak var device: VirtioSerial?
        init(id: UInt32, name: String) { self.id = id; self.name = name }
        public var pendingInputCount: Int { pendingInput.count }
        public func send(_ bytes: [UInt8]) {
            pendingInput += bytes
            device?.deliverInput(self)
        }
    }

    public let deviceType: UInt32 = 3
    public let offeredFeatures: UInt64 = VirtioSerial.fMultiport
    public let queueMaxSizes: [UInt16]
    public let ports: [Port]
    public private(set) var rejected: [VirtqueueError] = []
    /// Control messages waiting for a buffer on the control receive queue.
    var controlOut: [[UInt8]] = []
    var queues: VirtioQueues?
    var multiport: Bool { (queues?.ackedFeatures ?? 0) & VirtioSerial.fMultiport != 0 }

    public init(portNames: [String], queueSize: UInt16 = 256) {
        ports = portNames.enumerated().map { Port(id: UInt32($0.offset + 1), name: $0.element) }
        queueMaxSizes = [UInt16](repeating: queueSize, count: 4 + 2 * portNames.count)
        for p in ports { p.device = self }
    }

    public func port(named name: String) -> Port? { ports.first { $0.name == name } }

    /// struct virtio_console_config: cols, rows (le16), max_nr_ports, emerg_wr (le32).
    public func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        var c = LittleEndianBytes(capacity: 12)
        c.u16(0); c.u16(0); c.u32(UInt32(ports.count + 1)); c.u32(0)
        for i in data.indices {
            let o = offset + i
            data[i] = o >= 0 && o < c.bytes.count ? c.bytes[o] : 0
        }
    }

    public func writeConfig(offset: Int, from data: UnsafeRawBufferPointer) {}

    public func activate(_ queues: VirtioQueues) {
        self.queues = queues
        if !multiport, let first = ports.first { first.guestOpen = true; deliverInput(first) }
    }

    public func reset() {
        queues = nil
        controlOut = []
        for p in ports { p.guestOpen = false }
    }

    func queuesOf(_ port: Port) -> (rx: Int, tx: Int) {
        multiport ? (2 + 2 * Int(port.id), 3 + 2 * Int(port.id)) : (0, 1)
    }

    func portFor(queue: Int) -> Port? {
        if !multiport { return queue < 2 ? ports.first : nil }
        guard queue >= 4 else { return nil }
        let id = queue / 2 - 1
        return id >= 1 && id <= ports.count ? ports[id - 1] : nil
    }

    public func queueNotify(_ index: Int) {
        if multiport && index == VirtioSerial.controlReceiveQueue { deliverControl(); return }
        if multiport && index == VirtioSerial.controlTransmitQueue { readControl(); return }
        guard let port = portFor(queue: index) else { return }
        if index == queuesOf(port).rx { deliverInput(port) } else { drainOutput(port) }
    }

    func deliverInput(_ port: Port) {
        guard let q = queues, port.guestOpen, !port.pendingInput.isEmpty else { return }
        var sent = 0
        q.drain(queue: queuesOf(port).rx, while: { sent < port.pendingInput.count },
                rejected: { self.rejected.append($0) }) { (chain) throws(VirtqueueError) -> UInt32 in
            try chain.require(writable: true)
            let n: Int
            do { n = try chain.write(port.pendingInput[sent...], into: q.memory) }
            catch { throw .bufferOutsideMemory(address: 0, length: 0) }
            sent += n
            return UInt32(n)
        }
        port.pendingInput.removeFirst(sent)
    }

    func drainOutput(_ port: Port) {
        guard let q = queues else { return }
        q.drain(queue: queuesOf(port).tx, rejected: { self.rejected.append($0) }) { (chain) throws(VirtqueueError) -> UInt32 in
            try chain.require(writable: false)
            let bytes: [UInt8]
            do { bytes = try chain.readAll(q.memory) } catch { throw .bufferOutsideMemory(address: 0, length: 0) }
            if !bytes.isEmpty { port.onOutput?(bytes) }
            return 0
        }
    }

    func control(_ id: UInt32, _ event: UInt16, _ value: UInt16, _ payload: [UInt8] = []) {
        var c = LittleEndianBytes(capacity: 8 + payload.count)
        c.u32(id); c.u16(event); c.u16(value); c.raw(payload)
        controlOut.append(c.bytes)
    }

    func deliverControl() {
        guard let q = queues, !controlOut.isEmpty else { return }
        var sent = 0
        q.drain(queue: VirtioSerial.controlReceiveQueue, while: { sent < self.controlOut.count },
                rejected: { self.rejected.append($0) }) { (chain) throws(VirtqueueError) -> UInt32 in
            try chain.require(writable: true)
            let m = self.controlOut[sent]
            guard chain.writableLength >= m.count else { throw .wrongDirection(expectedWritable: true) }
            do { _ = try chain.write(m[...], into: q.memory) } catch { throw .bufferOutsideMemory(address: 0, length: 0) }
            sent += 1
            return UInt32(m.count)
        }
        controlOut.removeFirst(sent)
    }

    /// Messages from the driver: struct virtio_console_control { le32 id; le16 event; le16 value; }.
    func readControl() {
        guard let q = queues else { return }
        var messages: [(UInt32, UInt16, UInt16)] = []
        q.drain(queue: VirtioSerial.controlTransmitQueue, rejected: { self.rejected.append($0) }) { (chain) throws(VirtqueueError) -> UInt32 in
            try chain.require(writable: false)
            let b: [UInt8]
            do { b = try chain.readAll(q.memory, limit: 8) } catch { throw .bufferOutsideMemory(address: 0, length: 0) }
            guard b.count == 8 else { return 0 }   // malformed: ignored
            let id = UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
            messages.append((id, UInt16(b[4]) | UInt16(b[5]) << 8, UInt16(b[6]) | UInt16(b[7]) << 8))
            return 0
        }
        for (id, event, value) in messages {
            let port = id >= 1 && Int(id) <= ports.count ? ports[Int(id) - 1] : nil
            switch event {
            case Event.deviceReady where value == 1:
                for p in ports { control(p.id, Event.deviceAdd, 1) }
            case Event.portReady where value == 1:
                guard let p = port else { break }
                control(p.id, Event.portName, 1, Array(p.name.utf8))
                control(p.id, Event.portOpen, 1)   // the host end is always connected
            case Event.portOpen:
                guard let p = port else { break }
                p.guestOpen = value != 0
                if p.guestOpen { deliverInput(p) }
            default: break
            }
        }
        deliverControl()
    }
}
