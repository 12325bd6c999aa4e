/// config.json's linux.seccomp, checked against the names runc accepts. The guest turns it
/// into a BPF filter with libseccomp (Sources/Guest/SeccompFilter.swift).
public struct Seccomp: Sendable, Equatable {
    public var defaultAction: Action
    public var defaultErrnoRet: UInt32?
    public var architectures: [String]
    public var flags: [String]
    public var syscalls: [Syscall]

    public struct Syscall: Sendable, Equatable {
        public var names: [String]
        public var action: Action
        public var errnoRet: UInt32?
        public var args: [Arg]
    }

    public struct Arg: Sendable, Equatable {
        public var index: UInt32
        public var value: UInt64
        public var valueTwo: UInt64
        public var op: Operator
    }

    public enum Action: String, Sendable, CaseIterable {
        case allow = "SCMP_ACT_ALLOW", errno = "SCMP_ACT_ERRNO", kill = "SCMP_ACT_KILL"
        case killProcess = "SCMP_ACT_KILL_PROCESS", killThread = "SCMP_ACT_KILL_THREAD"
        case log = "SCMP_ACT_LOG", trace = "SCMP_ACT_TRACE", trap = "SCMP_ACT_TRAP"
        /// Known to runc, refused here: its listener fd would have to reach an agent on the host.
        case notify = "SCMP_ACT_NOTIFY"

        /// Allow-like actions get no -ENOSYS stub (runc: a tracer handles new syscalls itself).
        public var isPermissive: Bool { self == .allow || self == .log || self == .trace }
    }

    public enum Operator: String, Sendable, CaseIterable {
        case ne = "SCMP_CMP_NE", lt = "SCMP_CMP_LT", le = "SCMP_CMP_LE", eq = "SCMP_CMP_EQ"
        case ge = "SCMP_CMP_GE", gt = "SCMP_CMP_GT", maskedEq = "SCMP_CMP_MASKED_EQ"
    }

    /// The runtime spec's architecture names and libseccomp's names for them.
    public static let architectureNames: [String: String] = [
        "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X32": "x32",
        "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_AARCH64": "aarch64",
        "SCMP_ARCH_MIPS": "mips", "SCMP_ARCH_MIPS64": "mips64", "SCMP_ARCH_MIPS64N32": "mips64n32",
        "SCMP_ARCH_MIPSEL": "mipsel", "SCMP_ARCH_MIPSEL64": "mipsel64", "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
        "SCMP_ARCH_PPC": "ppc", "SCMP_ARCH_PPC64": "ppc64", "SCMP_ARCH_PPC64LE": "ppc64le",
        "SCMP_ARCH_S390": "s390", "SCMP_ARCH_S390X": "s390x", "SCMP_ARCH_RISCV64": "riscv64",
    ]

    /// Filter flags runc knows; TSYNC is accepted and has nothing to do (one thread execs).
    public static let knownFlags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"]

    /// What `features` lists: the actions that work here (not NOTIFY), sorted as runc sorts them.
    public static var supportedActions: [String] { Action.allCases.filter { $0 != .notify }.map(\.rawValue).sorted() }
    public static var operators: [String] { Operator.allCases.map(\.rawValue).sorted() }
    public static var architectures: [String] { architectureNames.keys.sorted() }
}

/// Parses linux.seccomp with runc's rules: no default action and no syscalls means no filter;
/// an unknown action, operator, architecture or flag is an error naming where it is.
enum SeccompParser {
    static func parse(_ f: Field) throws(SpecError) -> Seccomp? {
        guard try f.object() != nil else { return nil }
        let defaultName = try f["defaultAction"].string() ?? ""
        let calls = try f["syscalls"].array()
        if defaultName.isEmpty && calls.isEmpty { return nil }
        if defaultName.isEmpty { throw SpecError("\(f["defaultAction"].path) is required when syscalls are listed") }
        var s = Seccomp(defaultAction: try action(f["defaultAction"], defaultName),
                        defaultErrnoRet: try f["defaultErrnoRet"].uint32(), architectures: [], flags: [], syscalls: [])
        for a in try f["architectures"].array() {
            let name = try a.requiredString()
            guard Seccomp.architectureNames[name] != nil else {
                throw SpecError("\(a.path): unknown architecture \"\(name)\"")
            }
            s.architectures.append(name)
        }
        for fl in try f["flags"].array() {
            let name = try fl.requiredString()
            guard Seccomp.knownFlags.contains(name) else { throw SpecError("\(fl.path): unknown seccomp flag \"\(name)\"") }
            s.flags.append(name)
        }
        for c in calls {
            var call = Seccomp.Syscall(names: [], action: try action(c["action"], try c["action"].requiredString()),
                                       errnoRet: try c["errnoRet"].uint32(), args: [])
            for n in try c["names"].array() {
                let name = try n.requiredString()
                if name.isEmpty { throw SpecError("\(n.path): empty string is not a valid syscall") }
                call.names.append(name)
            }
            for a in try c["args"].array() {
                let index = try a["index"].uint32() ?? 0
                guard index < 6 else { throw SpecError("\(a.path).index: \(index) is out of range (a syscall has 6 arguments)") }
                let opName = try a["op"].requiredString()
                guard let op = Seccomp.Operator(rawValue: opName) else {
                    throw SpecError("\(a.path).op: unknown operator \"\(opName)\"")
                }
                call.args.append(Seccomp.Arg(index: index, value: try a["value"].uint64() ?? 0,
                                             valueTwo: try a["valueTwo"].uint64() ?? 0, op: op))
            }
            s.syscalls.append(call)
        }
        return s
    }

    static func action(_ f: Field, _ name: String) throws(SpecError) -> Seccomp.Action {
        guard let a = Seccomp.Action(rawValue: name) else { throw SpecError("\(f.path): unknown action \"\(name)\"") }
        if a == .notify {
            throw SpecError("\(f.path): SCMP_ACT_NOTIFY is not supported by kata-runtime (the listener would be inside the VM)")
        }
        return a
    }
}
