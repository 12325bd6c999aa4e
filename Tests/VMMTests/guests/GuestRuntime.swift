// Shared pieces of the tiny test guests: a linker script, an entry stub and port/MMIO helpers.
// The guests are C kept in Swift string literals because a Swift test target cannot contain .c
// files (SwiftPM rejects mixed-language targets and Package.swift is not ours to change).
// Built at test time with gcc -ffreestanding (see GuestBuilder.swift); no FPU/SSE/XSAVE/int3,
// so the PVM /dev/kvm on the development machines can run them.
enum GuestRuntime {
    /// Everything at 1 MiB, .bss included in the image (so it is zeroed and inside memory).
    static let linkerScript = #"""
    ENTRY(_start)
    SECTIONS {
      . = 0x100000;
      .text : { *(.text.start) *(.text .text.*) }
      .rodata : { *(.rodata .rodata.*) }
      .data : { *(.data .data.*) }
      .bss : { *(.bss .bss.*) *(COMMON) BYTE(0) }
      /DISCARD/ : { *(.note*) *(.comment) *(.eh_frame*) }
    }
    """#

    static let header = #"""
    typedef unsigned char u8; typedef unsigned short u16; typedef unsigned int u32; typedef unsigned long u64;

    /* The VMM sets rsp; main's return value goes to the debug-exit port, which stops the VM. */
    __asm__(".section .text.start,\"ax\"\n.globl _start\n_start:\n"
            "  call main\n  outb %al, $0xf4\n1: jmp 1b\n.previous\n");

    static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
    static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
    static inline u32 mmio_read(u64 a) { return *(volatile u32 *)a; }
    static inline void mmio_write(u64 a, u32 v) { *(volatile u32 *)a = v; }
    /* Full barrier without SSE2's mfence. */
    static inline void fence(void) { __asm__ volatile("lock; addl $0, (%%rsp)" ::: "memory"); }

    __attribute__((unused)) static void putc_(char c) { outb(0x3f8, (u8)c); }
    __attribute__((unused)) static void puts_(const char *s) { while (*s) putc_(*s++); }
    __attribute__((unused)) static void puthex(u64 v, int digits) {
        for (int i = digits - 1; i >= 0; i--) putc_("0123456789abcdef"[(v >> (4 * i)) & 0xf]);
    }
    """#
}
