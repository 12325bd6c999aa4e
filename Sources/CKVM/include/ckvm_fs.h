// C side of the in-process virtio-fs server: syscalls and flags Glibc does not expose to Swift
// (openat2 with RESOLVE_*, renameat2, getdents64, getrandom, O_PATH, AT_EMPTY_PATH...).
// ckvm_fs.c checks every constant below against the real headers at compile time.
#ifndef CKVM_FS_H
#define CKVM_FS_H

#include <stdint.h>
#include <sys/types.h>

enum {
    CKVM_O_PATH = 010000000,
    CKVM_O_TMPFILE_DIR = 020000000,     // __O_TMPFILE without O_DIRECTORY
    CKVM_O_NOATIME = 01000000,
    CKVM_O_DIRECT = 040000,
    CKVM_AT_EMPTY_PATH = 0x1000,
    CKVM_RESOLVE_NO_XDEV = 0x01,
    CKVM_RESOLVE_NO_MAGICLINKS = 0x02,
    CKVM_RESOLVE_NO_SYMLINKS = 0x04,
    CKVM_RESOLVE_BENEATH = 0x08,
    CKVM_RESOLVE_IN_ROOT = 0x10,
    CKVM_RENAME_NOREPLACE = 1,
    CKVM_RENAME_EXCHANGE = 2,
    CKVM_RENAME_WHITEOUT = 4,
};

/// openat2(2): `resolve` is a mask of CKVM_RESOLVE_*. Returns the fd or -1/errno.
int ckvm_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
/// renameat2(2).
int ckvm_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);
/// getdents64(2): linux_dirent64 records into buf; returns bytes or -1/errno.
ssize_t ckvm_getdents64(int fd, void *buf, size_t len);
/// getrandom(2) with flags 0 (blocks only until the pool is initialised at boot).
ssize_t ckvm_getrandom(void *buf, size_t len);

#endif
