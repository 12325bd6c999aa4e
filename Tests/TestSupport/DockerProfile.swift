#if canImport(Glibc)
import Glibc
#endif
import CSeccomp

/// A profile shaped like the one docker sends for a default container on x86_64: every
/// syscall libseccomp knows there except the privileged ones docker leaves out, the same
/// argument rules (socket, personality, clone) and clone3 answered with ENOSYS.
public func dockerLikeProfile() -> String {
    let refused: Set<String> = [
        "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "clone", "clone3", "create_module", "delete_module",
        "finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "get_mempolicy", "init_module",
        "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount",
        "mount_setattr", "move_mount", "move_pages", "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open",
        "personality", "pidfd_getfd", "pivot_root", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace",
        "query_module", "quotactl", "quotactl_fd", "reboot", "request_key", "set_mempolicy", "set_mempolicy_home_node",
        "setdomainname", "sethostname", "setns", "settimeofday", "socket", "swapoff", "swapon", "sysfs", "syslog",
        "_sysctl", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vhangup", "vm86", "vm86old", "afs_syscall",
        "tuxcall", "security", "putpmsg", "getpmsg", "epoll_ctl_old", "epoll_wait_old",
    ]
    var names: [String] = []
    for n in Int32(0)..<460 {
        guard let p = seccomp_syscall_resolve_num_arch(seccomp_arch_resolve_name("x86_64"), n) else { continue }
        let name = String(cString: p)
        free(p)
        if !refused.contains(name) { names.append(name) }
    }
    // The 32-bit and other architectures' names docker lists beside them (x86 and x32 filters use them).
    names += """
    chown32 fchown32 fcntl64 fstat64 fstatat64 fstatfs64 ftruncate64 getegid32 geteuid32 getgid32 getgroups32
    getresgid32 getresuid32 getuid32 lchown32 _llseek lstat64 mmap2 _newselect recv send setfsgid32 setfsuid32 setgid32
    setgroups32 setregid32 setresgid32 setresuid32 setreuid32 setuid32 sigprocmask sigreturn socketcall stat64 statfs64
    truncate64 ugetrlimit waitpid ipc clock_gettime64 clock_getres_time64 clock_nanosleep_time64 futex_time64
    io_pgetevents_time64 mq_timedreceive_time64 mq_timedsend_time64 ppoll_time64 pselect6_time64 recvmmsg_time64
    rt_sigtimedwait_time64 sched_rr_get_interval_time64 semtimedop_time64 timer_gettime64 timer_settime64
    timerfd_gettime64 timerfd_settime64 utimensat_time64 fadvise64_64 sendfile64 riscv_flush_icache
    """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init).filter { !names.contains($0) }
    func quoted(_ a: [String]) -> String { "[" + a.map { "\"\($0)\"" }.joined(separator: ",") + "]" }
    let personality = [0, 8, 131072, 131080, 4294967295].map {
        #"{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": \#($0), "op": "SCMP_CMP_EQ"}]}"#
    }
    return """
    {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
     "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
     "syscalls": [
       {"names": \(quoted(names)), "action": "SCMP_ACT_ALLOW"},
       {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
       \(personality.joined(separator: ",\n   ")),
       {"names": ["arch_prctl", "modify_ldt", "chroot"], "action": "SCMP_ACT_ALLOW"},
       {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
       {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
     ]}
    """
}
