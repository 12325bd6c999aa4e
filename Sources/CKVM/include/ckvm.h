// C side of the built-in VMM: linux/kvm.h, the ioctls Swift cannot call (ioctl is variadic
// and the request numbers are function-like macros), and flat accessors for struct kvm_run's
// anonymous unions. Every function returns what the syscall returns (-1 with errno on error).
#ifndef CKVM_H
#define CKVM_H

#include <linux/kvm.h>
#include <stdint.h>
#include <time.h>

#include "ckvm_fs.h"
#include "ckvm_net.h"

// System fd (/dev/kvm).
int ckvm_open_dev(const char *path);
int ckvm_get_api_version(int sys_fd);
int ckvm_check_extension(int fd, int cap);
int ckvm_get_vcpu_mmap_size(int sys_fd);
int ckvm_create_vm(int sys_fd);

// VM fd.
int ckvm_set_tss_addr(int vm_fd, uint64_t addr);
int ckvm_set_identity_map_addr(int vm_fd, uint64_t addr);
int ckvm_create_irqchip(int vm_fd);
int ckvm_create_pit2(int vm_fd);
int ckvm_set_user_memory_region(int vm_fd, uint32_t slot, uint32_t flags, uint64_t guest_phys,
                                uint64_t size, uint64_t host_addr);
int ckvm_create_vcpu(int vm_fd, unsigned long id);
int ckvm_irq_line(int vm_fd, uint32_t irq, uint32_t level);
int ckvm_irqfd(int vm_fd, int event_fd, uint32_t gsi, int deassign);
/// KVM_IOEVENTFD: a guest write of `len` bytes to `addr` (port I/O if `pio`) signals event_fd
/// without an exit; with `match_data`, only when the value written equals `data`.
int ckvm_ioeventfd(int vm_fd, int event_fd, uint64_t addr, uint32_t len, int pio, int match_data,
                   uint64_t data, int deassign);

// vCPU fd.
int ckvm_run(int vcpu_fd);
int ckvm_get_regs(int vcpu_fd, struct kvm_regs *regs);
int ckvm_set_regs(int vcpu_fd, const struct kvm_regs *regs);
int ckvm_get_sregs(int vcpu_fd, struct kvm_sregs *sregs);
int ckvm_set_sregs(int vcpu_fd, const struct kvm_sregs *sregs);
/// x87 control word 0x37f and MXCSR 0x1f80, as a freshly reset FPU (what Linux expects at entry).
int ckvm_set_fpu_defaults(int vcpu_fd);
/// KVM_GET_SUPPORTED_CPUID into `entries` (room for `max`); returns the entry count or -1/errno
/// (E2BIG when `max` is too small).
int ckvm_get_supported_cpuid(int sys_fd, struct kvm_cpuid_entry2 *entries, uint32_t max);
/// KVM_SET_CPUID2 with `count` entries.
int ckvm_set_cpuid2(int vcpu_fd, const struct kvm_cpuid_entry2 *entries, uint32_t count);
/// KVM_SET_MSRS: returns how many of the `count` MSRs were set (stops at the first refused one).
int ckvm_set_msrs(int vcpu_fd, const uint32_t *indices, const uint64_t *values, uint32_t count);
/// KVM_GET_MSRS of one MSR; returns 1 when read.
int ckvm_get_msr(int vcpu_fd, uint32_t index, uint64_t *value);
/// KVM_GET_LAPIC / KVM_SET_LAPIC: the local APIC's 1024-byte register page.
int ckvm_get_lapic(int vcpu_fd, uint8_t regs[1024]);
int ckvm_set_lapic(int vcpu_fd, const uint8_t regs[1024]);
/// Guest-virtual to guest-physical through the vCPU's current page tables.
int ckvm_translate(int vcpu_fd, uint64_t linear, uint64_t *physical, int *valid);
/* KVM_GET_MP_STATE: KVM_MP_STATE_RUNNABLE, _UNINITIALIZED (waiting for INIT), _INIT_RECEIVED
   (waiting for SIPI), _HALTED, ... */
int ckvm_get_mp_state(int vcpu_fd, uint32_t *state);

// struct kvm_run accessors (the run page is shared with the kernel).
uint32_t ckvm_run_exit_reason(const struct kvm_run *run);
void ckvm_run_set_immediate_exit(struct kvm_run *run, uint8_t value);

struct ckvm_io_exit { uint8_t direction; uint8_t size; uint16_t port; uint32_t count; uint64_t data_offset; };
struct ckvm_io_exit ckvm_run_io(const struct kvm_run *run);

struct ckvm_mmio_exit { uint64_t phys_addr; uint32_t len; uint8_t is_write; };
struct ckvm_mmio_exit ckvm_run_mmio(const struct kvm_run *run);
uint8_t *ckvm_run_mmio_data(struct kvm_run *run);

struct ckvm_internal_exit { uint32_t suberror; uint32_t ndata; uint64_t data[16]; };
struct ckvm_internal_exit ckvm_run_internal(const struct kvm_run *run);

uint64_t ckvm_run_fail_entry_reason(const struct kvm_run *run);
struct ckvm_system_event_exit { uint32_t type; uint32_t ndata; uint64_t data0; };
struct ckvm_system_event_exit ckvm_run_system_event(const struct kvm_run *run);

// Kicking a vCPU thread out of KVM_RUN: a no-op handler (no SA_RESTART) so that a signal makes
// KVM_RUN return EINTR, and a per-thread POSIX timer that sends it.
int ckvm_kick_signal(void);
int ckvm_install_kick_handler(void);
/// A timer delivering ckvm_kick_signal() to the calling thread only; first/interval in ns.
int ckvm_thread_timer_start(timer_t *timer, uint64_t first_ns, uint64_t interval_ns);
int ckvm_thread_timer_stop(timer_t timer);

/// eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC).
int ckvm_eventfd(void);

/// unshare(CLONE_NEWNS) for the calling thread (CLONE_FS implied), then make every mount a
/// slave, so mounts made afterwards stay in this namespace and never reach the host's.
int ckvm_private_mount_ns(void);
/// mount(source, target, MS_BIND | MS_REC).
int ckvm_bind_mount(const char *source, const char *target);

/// Full memory barrier between the VMM's ring accesses and the guest's.
void ckvm_fence(void);

#endif
