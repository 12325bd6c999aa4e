/// The PC keyboard controller, only as far as reboot needs: writing the "pulse reset line"
/// command 0xfe to port 0x64 (what Linux's reboot=k and many loaders do) ends the VM.
/// Ports 0x60 (data, offset 0) and 0x64 (status/command, offset 4); status reads show empty
/// buffers so that polling loops finish.
public final class I8042: BusDevice {
    public static let resetCommand: UInt8 = 0xfe
    public private(set) var resetRequested = false
    public var onReset: (() -> Void)?
    var command: UInt8 = 0

    public init() {}

    public func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        for i in data.indices { data[i] = 0 }
    }

    public func write(offset: UInt64, from data: UnsafeRawBufferPointer) {
        guard offset == 4, let v = data.first else { return }
        command = v
        if v == I8042.resetCommand {
            resetRequested = true
            onReset?()
        }
    }
}
