/// Ways a driver (a guest) can misuse a split virtqueue. None of them may crash or hang the VMM.
public enum VirtqueueError: Error, Equatable, Sendable, CustomStringConvertible {
    case notReady
    /// Queue size 0, above the device maximum, or not a power of two.
    case invalidSize(UInt16)
    case misaligned(ring: String, address: UInt64)
    case ringOutsideMemory(ring: String, address: UInt64)
    /// avail.idx moved by more than the queue size since the device last looked.
    case availIndexJump(from: UInt16, to: UInt16)
    case headOutOfRange(UInt16)
    case nextOutOfRange(UInt16)
    /// A descriptor chain that comes back to a descriptor it already used.
    case loop(at: UInt16)
    case chainTooLong(Int)
    case bufferOutsideMemory(address: UInt64, length: UInt32)
    /// A device-readable descriptor after a device-writable one (the spec forbids it).
    case readableAfterWritable(UInt16)
    case indirectNotSupported(UInt16)
    /// The device needs only readable (or only writable) buffers on this queue.
    case wrongDirection(expectedWritable: Bool)
    case usedIndexOutOfRange(UInt32)

    public var description: String {
        switch self {
        case .notReady: return "queue not ready"
        case .invalidSize(let s): return "invalid queue size \(s)"
        case .misaligned(let r, let a): return "\(r) ring at 0x\(String(a, radix: 16)) is misaligned"
        case .ringOutsideMemory(let r, let a): return "\(r) ring at 0x\(String(a, radix: 16)) is outside guest memory"
        case .availIndexJump(let f, let t): return "avail index jumped from \(f) to \(t)"
        case .headOutOfRange(let i): return "chain head \(i) beyond the queue"
        case .nextOutOfRange(let i): return "next descriptor \(i) beyond the queue"
        case .loop(let i): return "descriptor chain loops back to \(i)"
        case .chainTooLong(let n): return "descriptor chain longer than \(n)"
        case .bufferOutsideMemory(let a, let n): return "buffer 0x\(String(a, radix: 16))+\(n) outside guest memory"
        case .readableAfterWritable(let i): return "readable descriptor \(i) after a writable one"
        case .indirectNotSupported(let i): return "indirect descriptor \(i) (VIRTIO_F_INDIRECT_DESC not offered)"
        case .wrongDirection(let w): return "expected only device-\(w ? "writable" : "readable") buffers"
        case .usedIndexOutOfRange(let i): return "used element id \(i) beyond the queue"
        }
    }
}
