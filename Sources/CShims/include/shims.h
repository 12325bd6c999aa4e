#ifndef KATA_SHIMS_H
#define KATA_SHIMS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <poll.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <grp.h>
#include <linux/filter.h>

// Wait-status macros are not importable into Swift.
int kata_wifexited(int status);
int kata_wexitstatus(int status);
int kata_wifsignaled(int status);
int kata_wtermsig(int status);

// Variadic or unwrapped calls.
int kata_fcntl_int(int fd, int cmd, int arg);
int kata_ioctl_ptr(int fd, unsigned long req, void *arg);
int kata_prctl(int option, unsigned long arg2);
int kata_open_mode(const char *path, int flags, mode_t mode);
int kata_pivot_root(const char *new_root, const char *put_old);
dev_t kata_makedev(unsigned int major, unsigned int minor);
pid_t kata_fork(void);
int kata_execvpe(const char *file, char *const argv[], char *const envp[]);
int kata_unix_listen(const char *path, int backlog);
int kata_unix_connect(const char *path);
int kata_send_fd(int sock, int fd, const void *data, size_t len);
int kata_recv_fd(int sock, void *data, size_t len, int *fd_out);
// Several fds in one message (exec passes stdin, stdout, stderr and its preserved fds to the
// keeper); at most the kernel's SCM_MAX_FD.
#define KATA_MAX_PASSED_FDS 253
int kata_send_fds(int sock, const int *fds, int n, const void *data, size_t len);
int kata_recv_fds(int sock, void *data, size_t len, int *fds_out, int max, int *n_out);
int kata_set_child_subreaper(void);
int kata_pipe2(int fds[2], int flags);
int kata_accept(int fd);
// Closes every fd >= 3 except `keep` (a detached relay holds nothing of its caller).
void kata_close_all_but(int keep);
/// Forks the face's stand-in for `podman top` (standin.c): PID 1 of a new PID namespace with
/// procfs on /proc, exe_fd (our binary) re-executed with `argv` as its command line and `comm`
/// as its name, running as uid/gid until *hold_fd, the face's end of a pipe, is closed.
/// Returns its PID or -errno.
pid_t kata_stand_in(int exe_fd, char *const argv[], const char *comm, uid_t uid, gid_t gid, int *hold_fd);
// fork() that starts the child inside the cgroup open as `cgroup_fd` (clone3 CLONE_INTO_CGROUP):
// no migration afterwards, which costs an RCU grace period. -1 with errno on failure.
pid_t kata_fork_into_cgroup(int cgroup_fd);
// Sets the loopback interface of the current network namespace up.
int kata_loopback_up(void);
int kata_unshare(int flags);
int kata_setns(int fd, int nstype);
int kata_sethostname(const char *name);
int kata_setdomainname(const char *name);
int kata_setgroups(size_t n, const gid_t *groups);
int kata_reboot(int cmd);
int kata_signalfd(int fd, const sigset_t *mask);
// A syscall by number (tests call syscalls a seccomp filter must block or let through).
long kata_syscall3(long nr, long a0, long a1, long a2);
// Anonymous in-memory file (libseccomp exports its BPF program into one).
int kata_memfd(const char *name);
// Loads a seccomp BPF program into the calling thread: prctl(PR_SET_SECCOMP) without flags,
// seccomp(SECCOMP_SET_MODE_FILTER, flags) with them, as runc does. -1 with errno on failure.
int kata_seccomp_load(const struct sock_filter *insns, unsigned short count, unsigned int flags);

// A NETLINK_ROUTE socket bound in the caller's network namespace (close-on-exec).
int kata_netlink_route_socket(void);
// Creates (or attaches to) the tap device `name` in the caller's network namespace:
// IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, not persistent, so it vanishes with its last fd.
int kata_tap_open(const char *name);

// fork + exec with the setup a VMM helper needs. Returns the child pid, or -errno
// when exec (or any setup step) failed in the child; the parent learns that through
// a close-on-exec pipe, so a failed spawn leaves no process behind.
struct kata_spawn_opts {
    const char *path;            // executable (absolute, or searched in PATH when search != 0)
    char *const *argv;
    char *const *envp;           // NULL: inherit environ
    int search;
    int fds[3];                  // stdin/out/err for the child; -1: /dev/null
    const int *keep_fds;         // extra fds kept open (cloexec cleared) in the child
    int n_keep_fds;
    int setsid;
    int pdeathsig;               // signal sent to the child when its parent dies; 0: none
    int new_mount_ns;            // private mount namespace for the bind mounts below
    const char *const *bind_src; // bind mounts made in that namespace before exec
    const char *const *bind_dst;
    int n_binds;
    const char *cwd;
};
pid_t kata_spawn(const struct kata_spawn_opts *o);

// --preserve-fds (sockets.c). What a socket fd is: family, SOCK_* type, whether it listens,
// whether it has a peer, and its port (AF_INET/AF_INET6; 0 otherwise). -1 if not a socket.
struct kata_socket_info { int family; int type; int listening; int connected; int port; };
int kata_socket_info(int fd, struct kata_socket_info *out);
// A listening stream socket like a host one, for the guest: AF_UNIX autobound to an abstract
// name, AF_INET/AF_INET6 on loopback at `port` (any free port when that one is taken).
// Its address (for kata_connect_nonblocking) goes to addr (128 bytes) and *len.
int kata_listen_like(int family, int port, void *addr, unsigned *len);
// A non-blocking, close-on-exec stream socket connecting to addr (EINPROGRESS counts as started).
int kata_connect_nonblocking(const void *addr, unsigned len);

#endif
