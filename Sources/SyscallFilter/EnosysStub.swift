import CShims

/// runc's -ENOSYS stub, put in front of a filter whose default action refuses: a syscall
/// numbered above every syscall the profile names is newer than the profile, so it gets
/// ENOSYS (libc then falls back to an older call) instead of the default errno (EPERM makes
/// glibc give up, e.g. on clone3 or faccessat2). Same decisions as runc's patchbpf, laid out
/// with a local "ret ENOSYS" per architecture so every conditional jump is short.
enum EnosysStub {
    static let retENOSYS: UInt32 = 0x0005_0000 | 38  // SECCOMP_RET_ERRNO | ENOSYS
    static let auditX86_64: UInt32 = 0xc000_003e
    static let x32Token: UInt32 = 0x4000_003e        // libseccomp's SCMP_ARCH_X32 (not a kernel value)
    static let x32Bit: UInt32 = 0x4000_0000          // __X32_SYSCALL_BIT
    static let s390: Set<UInt32> = [0x0000_0016, 0x8000_0016]  // AUDIT_ARCH_S390, AUDIT_ARCH_S390X

    static func ld(_ k: UInt32) -> sock_filter { sock_filter(code: 0x20, jt: 0, jf: 0, k: k) }       // BPF_LD|BPF_W|BPF_ABS
    static func ja(_ k: UInt32) -> sock_filter { sock_filter(code: 0x05, jt: 0, jf: 0, k: k) }       // BPF_JMP|BPF_JA
    static func jeq(_ k: UInt32, _ t: UInt8, _ f: UInt8) -> sock_filter { sock_filter(code: 0x15, jt: t, jf: f, k: k) }
    static func jgt(_ k: UInt32, _ t: UInt8, _ f: UInt8) -> sock_filter { sock_filter(code: 0x25, jt: t, jf: f, k: k) }
    static func jset(_ k: UInt32, _ t: UInt8, _ f: UInt8) -> sock_filter { sock_filter(code: 0x45, jt: t, jf: f, k: k) }
    static func ret(_ k: UInt32) -> sock_filter { sock_filter(code: 0x06, jt: 0, jf: 0, k: k) }

    /// `last`: per libseccomp architecture token, the largest syscall number in the profile.
    /// Empty when no architecture had one (runc then adds nothing useful either).
    static func build(_ last: [(token: UInt32, last: UInt32)]) -> [sock_filter] {
        // x86_64 and x32 share the kernel's AUDIT_ARCH_X86_64; x32 calls carry bit 30.
        var native: [(arch: UInt32, x86_64: UInt32?, x32: UInt32?, other: UInt32?)] = []
        for (token, n) in last {
            let arch = token == x32Token ? auditX86_64 : token
            let i = native.firstIndex { $0.arch == arch } ?? native.count
            if i == native.count { native.append((arch, nil, nil, nil)) }
            if token == x32Token { native[i].x32 = n } else if arch == auditX86_64 { native[i].x86_64 = n } else { native[i].other = n }
        }

        // Each section ends with "ja <filter>"; its offset is patched once the stub's length is known.
        var sections: [[sock_filter]] = []
        var arches: [UInt32] = []
        for a in native {
            var s = [ld(0)]  // the syscall number
            switch (a.x86_64, a.x32, a.other) {
            case let (x?, y?, _):
                s += [jset(x32Bit, 1, 0), jgt(x, 1, 2), jgt(y, 0, 1)]
            case let (x?, nil, _):
                s += [jset(x32Bit, 2, 0), jgt(x, 0, 1)]
            case let (nil, y?, _):
                s += [jset(x32Bit, 0, 2), jgt(y, 0, 1)]
            case let (nil, nil, n?):
                // s390: unknown syscalls arrive as 0 (the multiplexer), which no one uses any more.
                if s390.contains(a.arch) { s += [jeq(0, 1, 0)] }
                s += [jgt(n, 0, 1)]
            default: continue
            }
            s += [ret(retENOSYS), ja(0)]
            sections.append(s)
            arches.append(a.arch)
        }
        if sections.isEmpty { return [] }
        // ld arch; one jeq per architecture to its section; ja past the stub for the others.
        var stub = [ld(4)]
        var offset = sections.count  // from the instruction after the first jeq to the first section
        for (i, s) in sections.enumerated() {
            stub.append(jeq(arches[i], UInt8(offset), 0))
            offset += s.count - 1
        }
        stub.append(ja(UInt32(sections.reduce(0) { $0 + $1.count })))
        for s in sections { stub += s }
        // Each section's last ja skips whatever follows it in the stub.
        var end = stub.count
        for s in sections.reversed() {
            let jaIndex = end - 1
            stub[jaIndex].k = UInt32(stub.count - 1 - jaIndex)
            end -= s.count
        }
        return stub
    }
}
