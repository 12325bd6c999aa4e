import CKVM

/// Model-specific registers set before a Linux vCPU first runs (what a firmware would leave):
/// syscall/sysenter MSRs cleared, TSC at 0, fast strings on, MTRRs on with write-back default.
public enum BootMSRs {
    public struct MSR: Sendable, Equatable {
        public let name: String
        public let index: UInt32
        public let value: UInt64
    }

    public static let sysenterCS: UInt32 = 0x174, sysenterESP: UInt32 = 0x175, sysenterEIP: UInt32 = 0x176
    public static let tsc: UInt32 = 0x10
    public static let miscEnable: UInt32 = 0x1a0
    public static let mtrrDefType: UInt32 = 0x2ff
    public static let star: UInt32 = 0xc000_0081, lstar: UInt32 = 0xc000_0082, cstar: UInt32 = 0xc000_0083
    public static let syscallMask: UInt32 = 0xc000_0084, kernelGSBase: UInt32 = 0xc000_0102

    static let miscEnableFastString: UInt64 = 1 << 0
    static let mtrrEnable: UInt64 = 1 << 11
    static let memoryTypeWriteBack: UInt64 = 6

    public static let list: [MSR] = [
        MSR(name: "IA32_SYSENTER_CS", index: sysenterCS, value: 0),
        MSR(name: "IA32_SYSENTER_ESP", index: sysenterESP, value: 0),
        MSR(name: "IA32_SYSENTER_EIP", index: sysenterEIP, value: 0),
        MSR(name: "STAR", index: star, value: 0),
        MSR(name: "CSTAR", index: cstar, value: 0),
        MSR(name: "KERNEL_GS_BASE", index: kernelGSBase, value: 0),
        MSR(name: "SYSCALL_MASK", index: syscallMask, value: 0),
        MSR(name: "LSTAR", index: lstar, value: 0),
        MSR(name: "IA32_TSC", index: tsc, value: 0),
        MSR(name: "IA32_MISC_ENABLE", index: miscEnable, value: miscEnableFastString),
        MSR(name: "IA32_MTRR_DEF_TYPE", index: mtrrDefType, value: mtrrEnable | memoryTypeWriteBack),
    ]

    /// Sets `msrs`; a refused one is named in the error.
    public static func apply(_ msrs: [MSR] = list, to vcpu: Vcpu) throws(KvmError) {
        let set = try KvmError.check(ckvm_set_msrs(vcpu.fd, msrs.map(\.index), msrs.map(\.value), UInt32(msrs.count)),
                                     "KVM_SET_MSRS")
        if Int(set) < msrs.count {
            throw .invalidConfiguration("KVM_SET_MSRS refused \(msrs[Int(set)].name) (0x\(String(msrs[Int(set)].index, radix: 16)))")
        }
    }

    public static func read(_ index: UInt32, from vcpu: Vcpu) throws(KvmError) -> UInt64 {
        var v: UInt64 = 0
        guard try KvmError.check(ckvm_get_msr(vcpu.fd, index, &v), "KVM_GET_MSRS 0x\(String(index, radix: 16))") == 1 else {
            throw .invalidConfiguration("KVM_GET_MSRS did not return MSR 0x\(String(index, radix: 16))")
        }
        return v
    }
}
