#if canImport(Glibc)
import Glibc
#endif
import CSeccomp
import CShims
import OCI

/// Why a seccomp filter could not be built or loaded, in one line.
public struct SeccompError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
    static func sys(_ what: String) -> SeccompError { SeccompError("\(what): \(String(cString: strerror(errno)))") }
}

/// A compiled seccomp filter: the BPF program libseccomp generated for linux.seccomp, with
/// runc's -ENOSYS stub in front. The keeper compiles it on the host while the VM boots
/// (libseccomp takes ~0.5 s for docker's profile under TCG) and sends it with `create`;
/// the guest loads it into the container's init and every exec'd process.
public struct SeccompProgram: @unchecked Sendable, Equatable {
    public let instructions: [sock_filter]
    /// SECCOMP_FILTER_FLAG_* for seccomp(2); 0 loads through prctl as runc does.
    public let flags: UInt32
    /// Syscall names libseccomp does not know; runc skips them (at debug level) too.
    public let skipped: [String]

    public init(instructions: [sock_filter], flags: UInt32, skipped: [String] = []) {
        self.instructions = instructions; self.flags = flags; self.skipped = skipped
    }

    /// Installs the filter in the calling thread. Without no_new_privs this needs CAP_SYS_ADMIN.
    public func load() throws(SeccompError) {
        let r = instructions.withUnsafeBufferPointer { kata_seccomp_load($0.baseAddress, UInt16($0.count), flags) }
        if r != 0 { throw .sys("load seccomp filter") }
    }

    /// For the agent protocol: u32 flags, then each instruction as u16 code, u8 jt, u8 jf,
    /// u32 k, little-endian.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4 + 8 * instructions.count)
        func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        le(flags)
        for i in instructions { le(i.code); out.append(i.jt); out.append(i.jf); le(i.k) }
        return out
    }

    public init(encoded b: [UInt8]) throws(SeccompError) {
        guard b.count >= 12, (b.count - 4) % 8 == 0, (b.count - 4) / 8 <= Int(UInt16.max) else {
            throw SeccompError("seccomp: malformed filter of \(b.count) bytes")
        }
        func u16(_ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
        func u32(_ i: Int) -> UInt32 { UInt32(u16(i)) | UInt32(u16(i + 2)) << 16 }
        var insns: [sock_filter] = []
        insns.reserveCapacity((b.count - 4) / 8)
        for i in stride(from: 4, to: b.count, by: 8) {
            insns.append(sock_filter(code: u16(i), jt: b[i + 2], jf: b[i + 3], k: u32(i + 4)))
        }
        self.init(instructions: insns, flags: u32(0))
    }

    public static func == (a: SeccompProgram, b: SeccompProgram) -> Bool {
        a.flags == b.flags && a.instructions.count == b.instructions.count
            && zip(a.instructions, b.instructions).allSatisfy { $0.code == $1.code && $0.jt == $1.jt && $0.jf == $1.jf && $0.k == $1.k }
    }
}

public enum SeccompFilter {
    /// libseccomp's version, as runc's `features` annotates it.
    public static var libraryVersion: String {
        guard let v = seccomp_version()?.pointee else { return "unknown" }
        return "\(v.major).\(v.minor).\(v.micro)"
    }

    static let flagValues: [String: (attr: scmp_filter_attr, kernel: UInt32)] = [
        "SECCOMP_FILTER_FLAG_LOG": (SCMP_FLTATR_CTL_LOG, 2),
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW": (SCMP_FLTATR_CTL_SSB, 4),
    ]

    /// libseccomp's action value, with runc's defaults: KILL is KILL_THREAD, ERRNO and TRACE
    /// return EPERM unless errnoRet says otherwise.
    static func action(_ a: Seccomp.Action, _ errnoRet: UInt32?) -> UInt32 {
        switch a {
        case .kill, .killThread: return 0x0000_0000
        case .killProcess: return 0x8000_0000
        case .trap: return 0x0003_0000
        case .errno: return 0x0005_0000 | ((errnoRet ?? UInt32(EPERM)) & 0xffff)
        case .trace: return 0x7ff0_0000 | ((errnoRet ?? UInt32(EPERM)) & 0xffff)
        case .log: return 0x7ffc_0000
        case .allow: return 0x7fff_0000
        case .notify: return 0x7fc0_0000  // refused by the parser
        }
    }

    static func libseccompError(_ what: String, _ rc: Int32) -> SeccompError {
        SeccompError("seccomp: \(what): \(String(cString: strerror(-rc)))")
    }

    /// Builds the filter as runc's InitSeccomp does, without loading it.
    public static func compile(_ s: Seccomp) throws(SeccompError) -> SeccompProgram {
        let defaultAction = action(s.defaultAction, s.defaultErrnoRet)
        guard let ctx = seccomp_init(defaultAction) else {
            throw SeccompError("seccomp: invalid default action \(s.defaultAction.rawValue)")
        }
        defer { seccomp_release(ctx) }
        // runc sets no_new_privs itself, only when the process asks for it.
        var rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        if rc != 0 { throw libseccompError("clear the no_new_privs attribute", rc) }
        var tokens: [UInt32] = []
        for name in s.architectures {
            let token = seccomp_arch_resolve_name(Seccomp.architectureNames[name] ?? "")
            if token == 0 { throw SeccompError("seccomp: architecture \(name) is unknown to libseccomp") }
            rc = seccomp_arch_add(ctx, token)
            if rc != 0 && rc != -EEXIST { throw libseccompError("add architecture \(name)", rc) }
            tokens.append(token)
        }
        var flags: UInt32 = 0
        for name in s.flags {
            guard let f = flagValues[name] else { continue }  // TSYNC: one thread, nothing to sync
            rc = seccomp_attr_set(ctx, f.attr, 1)
            if rc != 0 { throw libseccompError("flag \(name) is not supported here", rc) }
            flags |= f.kernel
        }
        let names = s.syscalls.reduce(0) { $0 + $1.names.count }
        // A binary search tree instead of a linear list of syscalls (runc does this above 32).
        if names > 32 { _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) }
        var skipped: [String] = []
        for call in s.syscalls {
            let act = action(call.action, call.errnoRet)
            if act == defaultAction { continue }  // redundant; libseccomp would refuse it
            let conditions = call.args.map {
                scmp_arg_cmp(arg: $0.index, op: compare($0.op), datum_a: $0.value, datum_b: $0.valueTwo)
            }
            // Two conditions on one argument cannot both hold in one rule: runc then adds
            // one rule per condition (any of them matches).
            let indexes = call.args.map(\.index)
            let groups = Set(indexes).count == indexes.count ? [conditions] : conditions.map { [$0] }
            for name in call.names {
                let nr = seccomp_syscall_resolve_name(name)
                if nr == __NR_SCMP_ERROR { skipped.append(name); continue }
                for g in groups {
                    rc = g.withUnsafeBufferPointer { seccomp_rule_add_array(ctx, act, nr, UInt32($0.count), $0.baseAddress) }
                    if rc != 0 { throw libseccompError("add rule for syscall \(name)", rc) }
                }
            }
        }
        var program = try export(ctx)
        if !s.defaultAction.isPermissive && !(s.defaultAction == .errno && s.defaultErrnoRet == UInt32(ENOSYS)) {
            program = EnosysStub.build(lastSyscalls(s, tokens)) + program
        }
        guard program.count <= Int(UInt16.max) else { throw SeccompError("seccomp: filter has \(program.count) instructions") }
        return SeccompProgram(instructions: program, flags: flags, skipped: skipped)
    }

    static func compare(_ op: Seccomp.Operator) -> scmp_compare {
        switch op {
        case .ne: return SCMP_CMP_NE
        case .lt: return SCMP_CMP_LT
        case .le: return SCMP_CMP_LE
        case .eq: return SCMP_CMP_EQ
        case .ge: return SCMP_CMP_GE
        case .gt: return SCMP_CMP_GT
        case .maskedEq: return SCMP_CMP_MASKED_EQ
        }
    }

    /// The largest syscall number the profile names, per architecture token.
    static func lastSyscalls(_ s: Seccomp, _ tokens: [UInt32]) -> [(token: UInt32, last: UInt32)] {
        var out: [(UInt32, UInt32)] = []
        for t in tokens where !out.contains(where: { $0.0 == t }) {
            var last: Int32 = 0
            for call in s.syscalls {
                for name in call.names { last = max(last, seccomp_syscall_resolve_name_arch(t, name)) }
            }
            if last > 0 { out.append((t, UInt32(last))) }
        }
        return out
    }

    /// libseccomp writes the program to a file descriptor; an in-memory file holds it.
    static func export(_ ctx: scmp_filter_ctx) throws(SeccompError) -> [sock_filter] {
        let fd = kata_memfd("seccomp-bpf")
        if fd < 0 { throw .sys("seccomp: memfd") }
        defer { close(fd) }
        let rc = seccomp_export_bpf(ctx, fd)
        if rc != 0 { throw libseccompError("generate the filter", rc) }
        let size = Int(lseek(fd, 0, SEEK_CUR))
        guard size > 0, size % MemoryLayout<sock_filter>.stride == 0 else { throw SeccompError("seccomp: filter of \(size) bytes") }
        var program = [sock_filter](repeating: sock_filter(), count: size / MemoryLayout<sock_filter>.stride)
        let n = program.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, 0) }
        guard n == size else { throw .sys("seccomp: read the filter") }
        return program
    }
}
