// The stand-in behind `podman top`. Podman lists a container's processes with psgo, which
// joins the mount namespace of the pid-file process (our face) and reads /proc there. The
// container's processes live in the guest, so the face offers one process standing for the
// container's init: PID 1 of a new PID namespace whose procfs is mounted on /proc in the
// face's private mount namespace, with the init's command line, name and user. It is our own
// binary re-executed with the init's argv (no privilege is needed to choose an argv, unlike
// PR_SET_MM); the constructor below stops it before the Swift runtime starts. It only waits
// for EOF on fd 0, the read end of a pipe the face holds (a parent-death signal would not
// survive the change of credentials).
#define _GNU_SOURCE
#include "shims.h"
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static const char stand_in_env[] = "KATA_STAND_IN";

static _Noreturn void wait_for_eof(void) {
    char b;
    for (;;) {
        ssize_t n = read(0, &b, 1);
        if (n == 0 || (n < 0 && errno != EINTR)) _exit(0);
    }
}

// Runs before anything else in a re-executed stand-in (the guest init's /proc constructor
// has priority 101; this one must come first, since the stand-in is PID 1 too).
__attribute__((constructor(101))) static void kata_stand_in_main(void) {
    const char *name = getenv(stand_in_env);
    if (name == NULL || getpid() != 1) return;
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
    wait_for_eof();
}

pid_t kata_stand_in(int exe_fd, char *const argv[], const char *comm, uid_t uid, gid_t gid, int *hold_fd) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return -errno;
    if (unshare(CLONE_NEWPID) < 0) { int e = errno; close(p[0]); close(p[1]); return -e; }
    // Built before fork: the child may only make async-signal-safe calls.
    char env0[64];
    size_t k = sizeof stand_in_env - 1;
    memcpy(env0, stand_in_env, k);
    env0[k++] = '=';
    size_t n = strnlen(comm, 15);
    memcpy(env0 + k, comm, n);
    env0[k + n] = 0;
    char *const envp[] = { env0, NULL };
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid != 0) {
        int e = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        close(p[0]);
        if (pid < 0) { close(p[1]); return -e; }
        *hold_fd = p[1];
        return pid;
    }
    // Child, PID 1 of the new namespace.
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    if (p[0] != 0 && dup2(p[0], 0) < 0) _exit(1);
    fcntl(0, F_SETFD, 0);
    // Nothing of the face's (engine pipes, the ready pipe, the signalfd) survives the exec.
    syscall(SYS_close_range, 1, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) _exit(1);
    // It runs no container code, but it is a host process: no capabilities, even as root.
    for (int c = 0; c < 64; c++) prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
    if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) _exit(1);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) _exit(1);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    syscall(SYS_execveat, exe_fd, "", argv, envp, AT_EMPTY_PATH);
    // A binary that cannot run here (a dynamically linked build: the rootfs has no loader)
    // still stands in, under the face's command line.
    syscall(SYS_close_range, 1, ~0U, 0);
    prctl(PR_SET_NAME, (unsigned long)comm, 0, 0, 0);
    wait_for_eof();
}
