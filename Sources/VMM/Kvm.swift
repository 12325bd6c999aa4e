#if canImport(Glibc)
import Glibc
#endif
import CKVM

/// The KVM system file descriptor (/dev/kvm): API version, capabilities, VM creation.
public final class Kvm: @unchecked Sendable {
    public let fd: Int32
    public let path: String

    public static let apiVersion: Int32 = 12

    /// Opens /dev/kvm and checks the API version.
    public init(path: String = "/dev/kvm") throws(KvmError) {
        let fd = ckvm_open_dev(path)
        if fd < 0 { throw .syscall("open \(path)", errno: errno) }
        self.fd = fd
        self.path = path
        let version = ckvm_get_api_version(fd)
        if version < 0 {
            let e = errno
            close(fd)
            throw .syscall("KVM_GET_API_VERSION on \(path) (not a KVM device?)", errno: e)
        }
        if version != Kvm.apiVersion {
            close(fd)
            throw .apiVersion(version)
        }
    }

    deinit { close(fd) }

    /// KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific positive value.
    public func extensionValue(_ cap: KvmCapability) -> Int32 {
        max(0, ckvm_check_extension(fd, cap.number))
    }

    public func has(_ cap: KvmCapability) -> Bool { extensionValue(cap) > 0 }

    /// The capabilities from `caps` that are absent, in order.
    public func missing(_ caps: [KvmCapability] = KvmCapability.required) -> [KvmCapability] {
        caps.filter { !has($0) }
    }

    /// Throws `.missingCapability` naming the first absent capability.
    public func requireCapabilities(_ caps: [KvmCapability] = KvmCapability.required) throws(KvmError) {
        if let first = missing(caps).first { throw .missingCapability(first.name) }
    }

    /// Size of the shared kvm_run mapping of each vCPU.
    public func vcpuMmapSize() throws(KvmError) -> Int {
        Int(try KvmError.check(ckvm_get_vcpu_mmap_size(fd), "KVM_GET_VCPU_MMAP_SIZE"))
    }

    public func createVM() throws(KvmError) -> KvmVM {
        let vmfd = try KvmError.check(ckvm_create_vm(fd), "KVM_CREATE_VM")
        return KvmVM(fd: vmfd, kvm: self)
    }

    /// Whether the host module is the software PVM hypervisor (see docs/vmm.md).
    public static var isPVM: Bool { access("/sys/module/kvm_pvm", F_OK) == 0 }
}
