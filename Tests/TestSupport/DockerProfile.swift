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
    names += ["chown32", "fstat64", "_llseek", "mmap2", "riscv_flush_icache"]  // other arches' names, as docker lists them
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
