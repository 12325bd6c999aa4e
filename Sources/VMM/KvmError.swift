#if canImport(Glibc)
import Glibc
#endif

/// Everything the VMM layer can fail with, each naming what was attempted.
public enum KvmError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A syscall or ioctl failed: what was attempted and errno.
    case syscall(String, errno: Int32)
    /// The KVM API version is not 12.
    case apiVersion(Int32)
    /// A capability the VMM needs is missing; the name is the KVM_CAP_* constant.
    case missingCapability(String)
    /// A guest-physical range is not backed by guest memory.
    case outOfGuestMemory(address: UInt64, length: Int)
    /// Configuration that cannot work (overlapping bus ranges, memory too small...).
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .syscall(let what, let e):
            return "\(what): \(String(cString: strerror(e))) (errno \(e))"
        case .apiVersion(let v):
            return "KVM API version is \(v), this VMM needs 12"
        case .missingCapability(let name):
            return "/dev/kvm lacks the required capability \(name)"
        case .outOfGuestMemory(let a, let n):
            return "guest-physical range 0x\(String(a, radix: 16))+\(n) is outside guest memory"
        case .invalidConfiguration(let s):
            return s
        }
    }

    /// Wraps a -1 return with the current errno.
    static func check(_ rc: Int32, _ what: @autoclosure () -> String) throws(KvmError) -> Int32 {
        if rc < 0 { throw .syscall(what(), errno: errno) }
        return rc
    }
}
