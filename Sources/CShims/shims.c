#define _GNU_SOURCE
#include "shims.h"
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

int kata_wifexited(int s) { return WIFEXITED(s); }
int kata_wexitstatus(int s) { return WEXITSTATUS(s); }
int kata_wifsignaled(int s) { return WIFSIGNALED(s); }
int kata_wtermsig(int s) { return WTERMSIG(s); }

int kata_fcntl_int(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }
int kata_ioctl_ptr(int fd, unsigned long req, void *arg) { return ioctl(fd, req, arg); }
int kata_prctl(int option, unsigned long arg2) { return prctl(option, arg2, 0, 0, 0); }
int kata_open_mode(const char *p, int flags, mode_t mode) { return open(p, flags, mode); }
int kata_pivot_root(const char *n, const char *o) { return (int)syscall(SYS_pivot_root, n, o); }
dev_t kata_makedev(unsigned int ma, unsigned int mi) { return makedev(ma, mi); }
pid_t kata_fork(void) { return fork(); }
int kata_execvpe(const char *f, char *const a[], char *const e[]) { return execvpe(f, a, e); }
int kata_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
long kata_syscall3(long nr, long a0, long a1, long a2) { return syscall(nr, a0, a1, a2); }
int kata_memfd(const char *name) { return (int)syscall(SYS_memfd_create, name, 1 /* MFD_CLOEXEC */); }

int kata_seccomp_load(const struct sock_filter *insns, unsigned short count, unsigned int flags) {
    struct sock_fprog prog = { .len = count, .filter = (struct sock_filter *)insns };
    if (flags == 0) return prctl(PR_SET_SECCOMP, 2 /* SECCOMP_MODE_FILTER */, &prog, 0, 0);
    return (int)syscall(SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, flags, &prog);
}

static int fill_addr(struct sockaddr_un *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a->sun_path) { errno = ENAMETOOLONG; return -1; }
    strcpy(a->sun_path, path);
    return 0;
}

int kata_unix_listen(const char *path, int backlog) {
    struct sockaddr_un a;
    if (fill_addr(&a, path) < 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    unlink(path);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, backlog) < 0) {
        int e = errno; close(fd); errno = e; return -1;
    }
    return fd;
}

int kata_unix_connect(const char *path) {
    struct sockaddr_un a;
    if (fill_addr(&a, path) < 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

int kata_send_fd(int sock, int fd, const void *data, size_t len) {
    char byte = 0;
    struct iovec iov = { .iov_base = len ? (void *)data : &byte, .iov_len = len ? len : 1 };
    char buf[CMSG_SPACE(sizeof(int))];
    memset(buf, 0, sizeof buf);
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t r;
    do r = sendmsg(sock, &m, MSG_NOSIGNAL); while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

int kata_recv_fd(int sock, void *data, size_t len, int *fd_out) {
    struct iovec iov = { .iov_base = data, .iov_len = len };
    char buf[CMSG_SPACE(sizeof(int))];
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf };
    ssize_t n;
    do n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
    *fd_out = -1;
    if (n < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(fd_out, CMSG_DATA(c), sizeof(int));
    return (int)n;
}

int kata_send_fds(int sock, const int *fds, int n, const void *data, size_t len) {
    if (n < 1 || n > KATA_MAX_PASSED_FDS) { errno = EINVAL; return -1; }
    char byte = 0;
    struct iovec iov = { .iov_base = len ? (void *)data : &byte, .iov_len = len ? len : 1 };
    char buf[CMSG_SPACE(KATA_MAX_PASSED_FDS * sizeof(int))];
    memset(buf, 0, sizeof buf);
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(n * sizeof(int));
    memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    ssize_t r;
    do r = sendmsg(sock, &m, MSG_NOSIGNAL); while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

int kata_recv_fds(int sock, void *data, size_t len, int *fds_out, int max, int *n_out) {
    struct iovec iov = { .iov_base = data, .iov_len = len };
    char buf[CMSG_SPACE(KATA_MAX_PASSED_FDS * sizeof(int))];
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf };
    ssize_t r;
    do r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC); while (r < 0 && errno == EINTR);
    *n_out = 0;
    if (r < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*n_out < max) fds_out[(*n_out)++] = fd; else close(fd);
        }
    }
    return (int)r;
}

// Child side of kata_spawn: only async-signal-safe calls from here on.
static void child_fail(int pipefd) {
    int e = errno;
    (void)!write(pipefd, &e, sizeof e);
    _exit(127);
}

static int move_fd(int from, int to) {
    if (from == to) return fcntl(to, F_SETFD, 0);
    return dup2(from, to) < 0 ? -1 : 0;
}

pid_t kata_spawn(const struct kata_spawn_opts *o) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return -errno;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        close(p[0]); close(p[1]);
        return -e;
    }
    if (pid == 0) {
        // Signal dispositions: back to default, mask cleared.
        for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
        sigset_t none; sigemptyset(&none);
        pthread_sigmask(SIG_SETMASK, &none, NULL);
        if (o->setsid && setsid() < 0) child_fail(p[1]);
        if (o->pdeathsig && prctl(PR_SET_PDEATHSIG, o->pdeathsig, 0, 0, 0) < 0) child_fail(p[1]);
        if (o->new_mount_ns) {
            if (unshare(CLONE_NEWNS) < 0) child_fail(p[1]);
            if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) child_fail(p[1]);
            for (int i = 0; i < o->n_binds; i++)
                if (mount(o->bind_src[i], o->bind_dst[i], NULL, MS_BIND | MS_REC, NULL) < 0) child_fail(p[1]);
        }
        // Move the three stdio fds out of the way first so dup2 cannot clobber them.
        int src[3];
        int nullfd = -1;
        for (int i = 0; i < 3; i++) {
            int f = o->fds[i];
            if (f < 0) {
                if (nullfd < 0) nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
                f = nullfd;
            }
            src[i] = fcntl(f, F_DUPFD_CLOEXEC, 10);
            if (src[i] < 0) child_fail(p[1]);
        }
        for (int i = 0; i < 3; i++) if (move_fd(src[i], i) < 0) child_fail(p[1]);
        // Nothing leaks into the child but stdio and the fds asked for.
        syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
        for (int i = 0; i < o->n_keep_fds; i++)
            if (fcntl(o->keep_fds[i], F_SETFD, 0) < 0) child_fail(p[1]);
        if (o->cwd && chdir(o->cwd) < 0) child_fail(p[1]);
        extern char **environ;
        char *const *env = o->envp ? o->envp : environ;
        if (o->search) execvpe(o->path, o->argv, env);
        else execve(o->path, o->argv, env);
        child_fail(p[1]);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(p[1]);
    int e = 0;
    ssize_t n;
    do { n = read(p[0], &e, sizeof e); } while (n < 0 && errno == EINTR);
    close(p[0]);
    if (n == sizeof e) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        return -e;
    }
    return pid;
}
int kata_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
int kata_unshare(int flags) { return unshare(flags); }
int kata_setns(int fd, int nstype) { return setns(fd, nstype); }
int kata_sethostname(const char *n) { return sethostname(n, strlen(n)); }
int kata_setdomainname(const char *n) { return setdomainname(n, strlen(n)); }
int kata_setgroups(size_t n, const gid_t *g) { return setgroups(n, g); }
int kata_reboot(int cmd) { return reboot(cmd); }
int kata_signalfd(int fd, const sigset_t *mask) { return signalfd(fd, mask, SFD_CLOEXEC | SFD_NONBLOCK); }
// Callers that have signal handlers (the test suite: Foundation's Process catches SIGCHLD)
// must not see EINTR as a failure, here or in the fd-passing calls above.
int kata_accept(int fd) {
    int r;
    do r = accept4(fd, NULL, NULL, SOCK_CLOEXEC); while (r < 0 && errno == EINTR);
    return r;
}

// As the guest's PID 1 we start with nothing mounted, but the Swift runtime reads
// /proc/self/exe while it initializes (before main). Priority 102 runs this first (after
// the stand-in check of standin.c).
__attribute__((constructor(102))) static void kata_pid1_early_proc(void) {
    if (getpid() != 1) return;
    mkdir("/proc", 0555);
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

void kata_close_all_but(int keep) {
    if (keep > 3) syscall(SYS_close_range, 3, keep - 1, 0);
    syscall(SYS_close_range, keep < 3 ? 3 : keep + 1, ~0U, 0);
}

#include <linux/sched.h>
pid_t kata_fork_into_cgroup(int cgroup_fd) {
    struct clone_args a;
    memset(&a, 0, sizeof a);
    a.flags = CLONE_INTO_CGROUP;
    a.exit_signal = SIGCHLD;
    a.cgroup = (unsigned long long)cgroup_fd;
    return (pid_t)syscall(SYS_clone3, &a, sizeof a);
}

#include <net/if.h>
int kata_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq r;
    memset(&r, 0, sizeof r);
    strcpy(r.ifr_name, "lo");
    int rc = ioctl(s, SIOCGIFFLAGS, &r);
    if (rc == 0 && !(r.ifr_flags & IFF_UP)) {
        r.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(s, SIOCSIFFLAGS, &r);
    }
    int e = errno;
    close(s);
    errno = e;
    return rc;
}

#include <linux/netlink.h>
#include <linux/if_tun.h>

int kata_netlink_route_socket(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return -1;
    struct sockaddr_nl a;
    memset(&a, 0, sizeof a);
    a.nl_family = AF_NETLINK;
    int one = 1;
    // Extended acks name the attribute the kernel rejected; best effort.
    setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

int kata_tap_open(const char *name) {
    if (strlen(name) >= IFNAMSIZ) { errno = ENAMETOOLONG; return -1; }
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -1;
    struct ifreq r;
    memset(&r, 0, sizeof r);
    strcpy(r.ifr_name, name);
    r.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &r) < 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}
