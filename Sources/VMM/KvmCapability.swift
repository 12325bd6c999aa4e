import CKVM

/// KVM capabilities the VMM relies on, by their KVM_CAP_* names (so errors name them).
public struct KvmCapability: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let number: Int32

    public var description: String { name }

    public static let irqchip = KvmCapability(name: "KVM_CAP_IRQCHIP", number: KVM_CAP_IRQCHIP)
    public static let hlt = KvmCapability(name: "KVM_CAP_HLT", number: KVM_CAP_HLT)
    public static let userMemory = KvmCapability(name: "KVM_CAP_USER_MEMORY", number: KVM_CAP_USER_MEMORY)
    public static let setTSSAddr = KvmCapability(name: "KVM_CAP_SET_TSS_ADDR", number: KVM_CAP_SET_TSS_ADDR)
    public static let pit2 = KvmCapability(name: "KVM_CAP_PIT2", number: KVM_CAP_PIT2)
    public static let pitState2 = KvmCapability(name: "KVM_CAP_PIT_STATE2", number: KVM_CAP_PIT_STATE2)
    public static let irqfd = KvmCapability(name: "KVM_CAP_IRQFD", number: KVM_CAP_IRQFD)
    public static let ioeventfd = KvmCapability(name: "KVM_CAP_IOEVENTFD", number: KVM_CAP_IOEVENTFD)
    public static let extCPUID = KvmCapability(name: "KVM_CAP_EXT_CPUID", number: KVM_CAP_EXT_CPUID)
    public static let immediateExit = KvmCapability(name: "KVM_CAP_IMMEDIATE_EXIT", number: KVM_CAP_IMMEDIATE_EXIT)
    /// The in-kernel LAPIC emulates the TSC-deadline timer mode (CPUID leaf 1 ECX[24] is ours to set).
    public static let tscDeadlineTimer = KvmCapability(name: "KVM_CAP_TSC_DEADLINE_TIMER", number: KVM_CAP_TSC_DEADLINE_TIMER)
    public static let setIdentityMapAddr = KvmCapability(name: "KVM_CAP_SET_IDENTITY_MAP_ADDR",
                                                          number: KVM_CAP_SET_IDENTITY_MAP_ADDR)

    /// What `MicroVM` needs to create a VM with an in-kernel irqchip and PIT.
    public static let required: [KvmCapability] = [
        .irqchip, .hlt, .userMemory, .setTSSAddr, .pit2, .pitState2, .irqfd, .ioeventfd, .extCPUID,
        .immediateExit,
    ]
}
