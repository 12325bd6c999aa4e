/// A one-byte port a test guest writes to say "done": the VM stops and the byte is its status.
public final class DebugExitPort: BusDevice {
    public private(set) var status: UInt8?
    public var onExit: ((UInt8) -> Void)?

    public init() {}

    public func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        for i in data.indices { data[i] = 0 }
    }

    public func write(offset: UInt64, from data: UnsafeRawBufferPointer) {
        guard let v = data.first else { return }
        status = v
        onExit?(v)
    }
}
