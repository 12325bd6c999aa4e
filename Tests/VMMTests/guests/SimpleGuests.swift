// Guests that exercise one thing each (C, built by GuestBuilder).
enum SimpleGuests {
    static let hello = #"""
    int main(void) { puts_("hello\n"); return 0; }
    """#

    /// Reads the identification registers of the virtio-mmio window at 0xd0000000 and of the
    /// empty window after it.
    static let mmioIDs = #"""
    #define VIRTIO 0xd0000000UL
    int main(void) {
        puts_("magic="); puthex(mmio_read(VIRTIO + 0x000), 8);
        puts_(" version="); puthex(mmio_read(VIRTIO + 0x004), 1);
        puts_(" device="); puthex(mmio_read(VIRTIO + 0x008), 1);
        puts_(" vendor="); puthex(mmio_read(VIRTIO + 0x00c), 8);
        puts_(" empty="); puthex(mmio_read(VIRTIO + 0x1000), 8);
        puts_("\n");
        return 0;
    }
    """#

    /// Writes 1 to the console's QueueNotify register (which the test routes to an ioeventfd).
    static let notify = #"""
    int main(void) { mmio_write(0xd0000050UL, 1); mmio_write(0xd0000050UL, 0); return 0; }
    """#

    /// Asks the keyboard controller to pulse the reset line, as Linux's reboot=k does.
    static let reboot = #"""
    int main(void) { puts_("rebooting\n"); outb(0x64, 0xfe); for (;;) {} }
    """#

    static let spin = #"""
    int main(void) { for (;;) { __asm__ volatile(""); } }
    """#

    /// Touches an address beyond the 4 GiB identity map: #PF with no IDT, so a triple fault.
    static let pageFault = #"""
    int main(void) { return (int)*(volatile u64 *)0x200000000UL; }
    """#

    /// An x87 instruction: fine on hardware virtualization, an emulation failure on PVM.
    static let fpu = #"""
    int main(void) { __asm__ volatile("fnclex"); puts_("fpu ok\n"); return 0; }
    """#

    /// Writes "hello" with `rep outsb` (string I/O: one exit, several bytes).
    static let stringIO = #"""
    int main(void) {
        static const char msg[] = "string io\n";
        const char *p = msg; u64 n = sizeof msg - 1;
        __asm__ volatile("rep outsb" : "+S"(p), "+c"(n) : "d"((u16)0x3f8) : "memory");
        return 0;
    }
    """#
}
