import CKVM

/// The in-kernel local APIC's register page (KVM_GET_LAPIC / KVM_SET_LAPIC), as firmware leaves
/// it for Linux: LINT0 delivers the 8259 PIC's interrupts (ExtINT) and LINT1 is the NMI line.
public struct LocalAPIC: Sendable, Equatable {
    public static let lvtLINT0 = 0x350, lvtLINT1 = 0x360
    public static let deliveryFixed: UInt32 = 0, deliveryNMI: UInt32 = 4, deliveryExtINT: UInt32 = 7

    public var registers: [UInt8]

    public init(registers: [UInt8]) { self.registers = registers }

    public static func read(_ vcpu: Vcpu) throws(KvmError) -> LocalAPIC {
        var regs = [UInt8](repeating: 0, count: 1024)
        _ = try KvmError.check(ckvm_get_lapic(vcpu.fd, &regs), "KVM_GET_LAPIC")
        return LocalAPIC(registers: regs)
    }

    public func write(_ vcpu: Vcpu) throws(KvmError) {
        _ = try KvmError.check(ckvm_set_lapic(vcpu.fd, registers), "KVM_SET_LAPIC")
    }

    public subscript(offset: Int) -> UInt32 {
        get { registers.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) } }
        set { registers.withUnsafeMutableBytes { $0.storeBytes(of: newValue.littleEndian, toByteOffset: offset, as: UInt32.self) } }
    }

    /// Delivery mode of an LVT entry (bits 8-10).
    public func deliveryMode(_ lvt: Int) -> UInt32 { (self[lvt] >> 8) & 7 }

    public mutating func setDeliveryMode(_ lvt: Int, _ mode: UInt32) {
        self[lvt] = (self[lvt] & ~0x700) | ((mode & 7) << 8)
    }

    /// LINT0 = ExtINT, LINT1 = NMI, on vCPU `vcpu`.
    public static func configureLINTs(_ vcpu: Vcpu) throws(KvmError) {
        var apic = try read(vcpu)
        apic.setDeliveryMode(lvtLINT0, deliveryExtINT)
        apic.setDeliveryMode(lvtLINT1, deliveryNMI)
        try apic.write(vcpu)
    }
}
