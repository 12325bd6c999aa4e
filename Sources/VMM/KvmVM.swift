#if canImport(Glibc)
import Glibc
#endif
import CKVM

/// A VM file descriptor: memory slots, irqchip, PIT, interrupt lines, vCPU creation.
public final class KvmVM: @unchecked Sendable {
    public let fd: Int32
    public let kvm: Kvm

    init(fd: Int32, kvm: Kvm) { self.fd = fd; self.kvm = kvm }
    deinit { close(fd) }

    /// Three pages KVM needs below 4 GiB on Intel for the real-mode TSS; unused by the guest.
    public static let defaultTSSAddress: UInt64 = 0xfffb_d000

    public func setTSSAddress(_ addr: UInt64 = KvmVM.defaultTSSAddress) throws(KvmError) {
        _ = try KvmError.check(ckvm_set_tss_addr(fd, addr), "KVM_SET_TSS_ADDR")
    }

    /// In-kernel PIC + IOAPIC + per-vCPU LAPIC. Must precede vCPU creation.
    public func createIRQChip() throws(KvmError) {
        _ = try KvmError.check(ckvm_create_irqchip(fd), "KVM_CREATE_IRQCHIP")
    }

    public func createPIT2() throws(KvmError) {
        _ = try KvmError.check(ckvm_create_pit2(fd), "KVM_CREATE_PIT2")
    }

    /// Maps `size` bytes at host address `host` to guest-physical `guestPhys` in `slot`.
    public func setUserMemoryRegion(slot: UInt32, guestPhys: UInt64, size: UInt64,
                                    host: UnsafeMutableRawPointer, readOnly: Bool = false) throws(KvmError) {
        let flags: UInt32 = readOnly ? UInt32(KVM_MEM_READONLY) : 0
        let addr = UInt64(UInt(bitPattern: host))
        _ = try KvmError.check(ckvm_set_user_memory_region(fd, slot, flags, guestPhys, size, addr),
                               "KVM_SET_USER_MEMORY_REGION slot \(slot) at 0x\(String(guestPhys, radix: 16))")
    }

    /// Registers every region of `memory`, one slot each starting at `firstSlot`.
    public func register(_ memory: GuestMemory, firstSlot: UInt32 = 0) throws(KvmError) {
        for (i, r) in memory.regions.enumerated() {
            try setUserMemoryRegion(slot: firstSlot + UInt32(i), guestPhys: r.guestBase,
                                    size: UInt64(r.size), host: r.host)
        }
    }

    /// Sets a GSI's level on the in-kernel irqchip (KVM_IRQ_LINE).
    public func setIRQLine(_ gsi: UInt32, high: Bool) throws(KvmError) {
        _ = try KvmError.check(ckvm_irq_line(fd, gsi, high ? 1 : 0), "KVM_IRQ_LINE \(gsi)")
    }

    /// An edge: high then low.
    public func pulseIRQ(_ gsi: UInt32) throws(KvmError) {
        try setIRQLine(gsi, high: true)
        try setIRQLine(gsi, high: false)
    }

    /// Routes signals on `eventFD` (an eventfd) to `gsi` without a user-space round trip.
    public func assignIRQFD(_ eventFD: Int32, gsi: UInt32) throws(KvmError) {
        _ = try KvmError.check(ckvm_irqfd(fd, eventFD, gsi, 0), "KVM_IRQFD gsi \(gsi)")
    }

    /// Guest writes to `address` (MMIO, or a port if `pio`) signal `eventFD` instead of exiting;
    /// with `value`, only writes of that value (e.g. a virtio-mmio QueueNotify of one queue).
    public func assignIOEventFD(_ eventFD: Int32, address: UInt64, length: UInt32 = 4, pio: Bool = false,
                                value: UInt64? = nil) throws(KvmError) {
        _ = try KvmError.check(ckvm_ioeventfd(fd, eventFD, address, length, pio ? 1 : 0, value == nil ? 0 : 1,
                                              value ?? 0, 0), "KVM_IOEVENTFD 0x\(String(address, radix: 16))")
    }

    public func createVcpu(id: Int) throws(KvmError) -> Vcpu {
        let vfd = try KvmError.check(ckvm_create_vcpu(fd, UInt(id)), "KVM_CREATE_VCPU \(id)")
        do {
            return try Vcpu(fd: vfd, id: id, mmapSize: try kvm.vcpuMmapSize(), vm: self)
        } catch {
            close(vfd)
            throw error
        }
    }
}
