#if canImport(Glibc)
import Glibc
#endif
import CKVM

/// A non-blocking eventfd: the signalling primitive behind KVM's irqfd and ioeventfd.
public final class EventFD: @unchecked Sendable {
    public let fd: Int32

    public init() throws(KvmError) {
        fd = try KvmError.check(ckvm_eventfd(), "eventfd")
    }

    deinit { close(fd) }

    /// Adds one to the counter.
    public func signal() {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    /// Reads and resets the counter; 0 when nothing was signalled.
    public func take() -> UInt64 {
        var v: UInt64 = 0
        return read(fd, &v, 8) == 8 ? v : 0
    }
}
