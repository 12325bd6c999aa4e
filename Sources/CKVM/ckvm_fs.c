#define _GNU_SOURCE
#include "ckvm_fs.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

_Static_assert(CKVM_O_PATH == O_PATH, "O_PATH");
_Static_assert(CKVM_O_TMPFILE_DIR == (O_TMPFILE & ~O_DIRECTORY), "O_TMPFILE");
_Static_assert(CKVM_O_NOATIME == O_NOATIME, "O_NOATIME");
_Static_assert(CKVM_O_DIRECT == O_DIRECT, "O_DIRECT");
_Static_assert(CKVM_AT_EMPTY_PATH == AT_EMPTY_PATH, "AT_EMPTY_PATH");
_Static_assert(CKVM_RESOLVE_NO_XDEV == RESOLVE_NO_XDEV, "RESOLVE_NO_XDEV");
_Static_assert(CKVM_RESOLVE_NO_MAGICLINKS == RESOLVE_NO_MAGICLINKS, "RESOLVE_NO_MAGICLINKS");
_Static_assert(CKVM_RESOLVE_NO_SYMLINKS == RESOLVE_NO_SYMLINKS, "RESOLVE_NO_SYMLINKS");
_Static_assert(CKVM_RESOLVE_BENEATH == RESOLVE_BENEATH, "RESOLVE_BENEATH");
_Static_assert(CKVM_RESOLVE_IN_ROOT == RESOLVE_IN_ROOT, "RESOLVE_IN_ROOT");
_Static_assert(CKVM_RENAME_NOREPLACE == RENAME_NOREPLACE, "RENAME_NOREPLACE");
_Static_assert(CKVM_RENAME_EXCHANGE == RENAME_EXCHANGE, "RENAME_EXCHANGE");
_Static_assert(CKVM_RENAME_WHITEOUT == RENAME_WHITEOUT, "RENAME_WHITEOUT");

int ckvm_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags;
    how.mode = mode;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int ckvm_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags) {
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

ssize_t ckvm_getdents64(int fd, void *buf, size_t len) { return syscall(SYS_getdents64, fd, buf, len); }

ssize_t ckvm_getrandom(void *buf, size_t len) { return getrandom(buf, len, 0); }
