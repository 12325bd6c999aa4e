#define _GNU_SOURCE
#include "ckvm.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int ckvm_open_dev(const char *path) { return open(path, O_RDWR | O_CLOEXEC); }
int ckvm_get_api_version(int fd) { return ioctl(fd, KVM_GET_API_VERSION, 0); }
int ckvm_check_extension(int fd, int cap) { return ioctl(fd, KVM_CHECK_EXTENSION, (unsigned long)cap); }
int ckvm_get_vcpu_mmap_size(int fd) { return ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0); }
int ckvm_create_vm(int fd) { return ioctl(fd, KVM_CREATE_VM, 0UL); }

int ckvm_set_tss_addr(int fd, uint64_t addr) { return ioctl(fd, KVM_SET_TSS_ADDR, (unsigned long)addr); }
int ckvm_set_identity_map_addr(int fd, uint64_t addr) { return ioctl(fd, KVM_SET_IDENTITY_MAP_ADDR, &addr); }
int ckvm_create_irqchip(int fd) { return ioctl(fd, KVM_CREATE_IRQCHIP, 0); }

int ckvm_create_pit2(int fd) {
    struct kvm_pit_config config;
    memset(&config, 0, sizeof config);
    config.flags = KVM_PIT_SPEAKER_DUMMY;
    return ioctl(fd, KVM_CREATE_PIT2, &config);
}

int ckvm_set_user_memory_region(int fd, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size, uint64_t host) {
    struct kvm_userspace_memory_region r = { .slot = slot, .flags = flags, .guest_phys_addr = gpa,
                                             .memory_size = size, .userspace_addr = host };
    return ioctl(fd, KVM_SET_USER_MEMORY_REGION, &r);
}

int ckvm_create_vcpu(int fd, unsigned long id) { return ioctl(fd, KVM_CREATE_VCPU, id); }

int ckvm_irq_line(int fd, uint32_t irq, uint32_t level) {
    struct kvm_irq_level l = { .irq = irq, .level = level };
    return ioctl(fd, KVM_IRQ_LINE, &l);
}

int ckvm_irqfd(int fd, int event_fd, uint32_t gsi, int deassign) {
    struct kvm_irqfd f;
    memset(&f, 0, sizeof f);
    f.fd = (uint32_t)event_fd;
    f.gsi = gsi;
    f.flags = deassign ? KVM_IRQFD_FLAG_DEASSIGN : 0;
    return ioctl(fd, KVM_IRQFD, &f);
}

int ckvm_ioeventfd(int fd, int event_fd, uint64_t addr, uint32_t len, int pio, int match_data,
                   uint64_t data, int deassign) {
    struct kvm_ioeventfd e;
    memset(&e, 0, sizeof e);
    e.fd = event_fd;
    e.addr = addr;
    e.len = len;
    e.datamatch = data;
    if (pio) e.flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (match_data) e.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    if (deassign) e.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
    return ioctl(fd, KVM_IOEVENTFD, &e);
}

int ckvm_run(int fd) { return ioctl(fd, KVM_RUN, 0); }
int ckvm_get_regs(int fd, struct kvm_regs *r) { return ioctl(fd, KVM_GET_REGS, r); }
int ckvm_set_regs(int fd, const struct kvm_regs *r) { return ioctl(fd, KVM_SET_REGS, r); }
int ckvm_get_sregs(int fd, struct kvm_sregs *s) { return ioctl(fd, KVM_GET_SREGS, s); }
int ckvm_set_sregs(int fd, const struct kvm_sregs *s) { return ioctl(fd, KVM_SET_SREGS, s); }

int ckvm_set_fpu_defaults(int fd) {
    struct kvm_fpu fpu;
    memset(&fpu, 0, sizeof fpu);
    fpu.fcw = 0x37f;
    fpu.mxcsr = 0x1f80;
    return ioctl(fd, KVM_SET_FPU, &fpu);
}

int ckvm_get_supported_cpuid(int sys_fd, struct kvm_cpuid_entry2 *entries, uint32_t max) {
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + (size_t)max * sizeof *entries);
    if (!c) { errno = ENOMEM; return -1; }
    c->nent = max;
    int rc = ioctl(sys_fd, KVM_GET_SUPPORTED_CPUID, c);
    int e = errno;
    if (rc == 0) { memcpy(entries, c->entries, (size_t)c->nent * sizeof *entries); rc = (int)c->nent; }
    free(c);
    errno = e;
    return rc;
}

int ckvm_set_cpuid2(int vcpu_fd, const struct kvm_cpuid_entry2 *entries, uint32_t count) {
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + (size_t)count * sizeof *entries);
    if (!c) { errno = ENOMEM; return -1; }
    c->nent = count;
    memcpy(c->entries, entries, (size_t)count * sizeof *entries);
    int rc = ioctl(vcpu_fd, KVM_SET_CPUID2, c);
    int e = errno;
    free(c);
    errno = e;
    return rc;
}

int ckvm_set_msrs(int vcpu_fd, const uint32_t *indices, const uint64_t *values, uint32_t count) {
    struct kvm_msrs *m = calloc(1, sizeof *m + (size_t)count * sizeof(struct kvm_msr_entry));
    if (!m) { errno = ENOMEM; return -1; }
    m->nmsrs = count;
    for (uint32_t i = 0; i < count; i++) { m->entries[i].index = indices[i]; m->entries[i].data = values[i]; }
    int rc = ioctl(vcpu_fd, KVM_SET_MSRS, m);
    int e = errno;
    free(m);
    errno = e;
    return rc;
}

int ckvm_get_msr(int vcpu_fd, uint32_t index, uint64_t *value) {
    _Alignas(struct kvm_msrs) unsigned char buf[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
    memset(buf, 0, sizeof buf);
    struct kvm_msrs *m = (struct kvm_msrs *)buf;
    m->nmsrs = 1;
    m->entries[0].index = index;
    int rc = ioctl(vcpu_fd, KVM_GET_MSRS, m);
    if (rc == 1) *value = m->entries[0].data;
    return rc;
}

int ckvm_get_lapic(int vcpu_fd, uint8_t regs[1024]) {
    struct kvm_lapic_state s;
    int rc = ioctl(vcpu_fd, KVM_GET_LAPIC, &s);
    if (rc == 0) memcpy(regs, s.regs, sizeof s.regs);
    return rc;
}

int ckvm_set_lapic(int vcpu_fd, const uint8_t regs[1024]) {
    struct kvm_lapic_state s;
    memcpy(s.regs, regs, sizeof s.regs);
    return ioctl(vcpu_fd, KVM_SET_LAPIC, &s);
}

int ckvm_get_mp_state(int vcpu_fd, uint32_t *state) {
    struct kvm_mp_state mp;
    int r = ioctl(vcpu_fd, KVM_GET_MP_STATE, &mp);
    if (r == 0) *state = mp.mp_state;
    return r;
}

int ckvm_translate(int fd, uint64_t linear, uint64_t *physical, int *valid) {
    struct kvm_translation t;
    memset(&t, 0, sizeof t);
    t.linear_address = linear;
    int rc = ioctl(fd, KVM_TRANSLATE, &t);
    if (rc == 0) { *physical = t.physical_address; *valid = t.valid; }
    return rc;
}

uint32_t ckvm_run_exit_reason(const struct kvm_run *run) { return run->exit_reason; }
void ckvm_run_set_immediate_exit(struct kvm_run *run, uint8_t v) { __atomic_store_n(&run->immediate_exit, v, __ATOMIC_SEQ_CST); }

struct ckvm_io_exit ckvm_run_io(const struct kvm_run *run) {
    struct ckvm_io_exit io = { run->io.direction, run->io.size, run->io.port, run->io.count, run->io.data_offset };
    return io;
}

struct ckvm_mmio_exit ckvm_run_mmio(const struct kvm_run *run) {
    struct ckvm_mmio_exit m = { run->mmio.phys_addr, run->mmio.len, run->mmio.is_write };
    return m;
}
uint8_t *ckvm_run_mmio_data(struct kvm_run *run) { return run->mmio.data; }

struct ckvm_internal_exit ckvm_run_internal(const struct kvm_run *run) {
    struct ckvm_internal_exit x;
    memset(&x, 0, sizeof x);
    x.suberror = run->internal.suberror;
    x.ndata = run->internal.ndata;
    uint32_t n = x.ndata < 16 ? x.ndata : 16;
    for (uint32_t i = 0; i < n; i++) x.data[i] = run->internal.data[i];
    return x;
}

uint64_t ckvm_run_fail_entry_reason(const struct kvm_run *run) { return run->fail_entry.hardware_entry_failure_reason; }

struct ckvm_system_event_exit ckvm_run_system_event(const struct kvm_run *run) {
    struct ckvm_system_event_exit s = { run->system_event.type, run->system_event.ndata,
                                        run->system_event.ndata ? run->system_event.data[0] : 0 };
    return s;
}

static void ckvm_kick_handler(int sig) { (void)sig; }
int ckvm_kick_signal(void) { return SIGRTMIN + 3; }

int ckvm_install_kick_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ckvm_kick_handler;   // no SA_RESTART: KVM_RUN must return EINTR
    sigemptyset(&sa.sa_mask);
    if (sigaction(ckvm_kick_signal(), &sa, NULL) < 0) return -1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, ckvm_kick_signal());
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL) == 0 ? 0 : -1;
}

int ckvm_thread_timer_start(timer_t *timer, uint64_t first_ns, uint64_t interval_ns) {
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = ckvm_kick_signal();
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &ev, timer) < 0) return -1;
    struct itimerspec its;
    if (first_ns == 0) first_ns = 1;
    its.it_value.tv_sec = (time_t)(first_ns / 1000000000ull);
    its.it_value.tv_nsec = (long)(first_ns % 1000000000ull);
    its.it_interval.tv_sec = (time_t)(interval_ns / 1000000000ull);
    its.it_interval.tv_nsec = (long)(interval_ns % 1000000000ull);
    if (timer_settime(*timer, 0, &its, NULL) < 0) { int e = errno; timer_delete(*timer); errno = e; return -1; }
    return 0;
}

int ckvm_thread_timer_stop(timer_t timer) { return timer_delete(timer); }

int ckvm_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

void ckvm_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

#include <sched.h>
#include <sys/mount.h>

int ckvm_private_mount_ns(void) {
    if (unshare(CLONE_NEWNS) < 0) return -1;
    return mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL);
}

int ckvm_bind_mount(const char *source, const char *target) {
    return mount(source, target, NULL, MS_BIND | MS_REC, NULL);
}
