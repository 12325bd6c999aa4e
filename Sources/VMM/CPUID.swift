#if canImport(Glibc)
import Glibc
#endif
import CKVM

/// The CPUID a vCPU reports: KVM_GET_SUPPORTED_CPUID, normalized per vCPU (APIC ids, topology,
/// hypervisor bit) and optionally with features hidden, then handed over with KVM_SET_CPUID2.
public struct CPUIDTable: Sendable {
    public var entries: [kvm_cpuid_entry2]

    public init(entries: [kvm_cpuid_entry2]) { self.entries = entries }

    /// What this host's KVM can offer a guest.
    public static func supported(by kvm: Kvm) throws(KvmError) -> CPUIDTable {
        var capacity: UInt32 = 128
        while true {
            var buffer = [kvm_cpuid_entry2](repeating: kvm_cpuid_entry2(), count: Int(capacity))
            let n = ckvm_get_supported_cpuid(kvm.fd, &buffer, capacity)
            if n >= 0 { return CPUIDTable(entries: Array(buffer.prefix(Int(n)))) }
            let e = errno
            guard e == E2BIG, capacity < 4096 else { throw .syscall("KVM_GET_SUPPORTED_CPUID", errno: e) }
            capacity *= 2
        }
    }

    public func entry(_ function: UInt32, index: UInt32 = 0) -> kvm_cpuid_entry2? {
        entries.first { $0.function == function && ($0.index == index || !$0.isIndexed) }
    }

    mutating func update(_ function: UInt32, _ body: (inout kvm_cpuid_entry2) -> Void) {
        for i in entries.indices where entries[i].function == function { body(&entries[i]) }
    }

    /// Per-vCPU values: initial APIC id (leaf 1 EBX[31:24], x2APIC id in 0xb/0x1f EDX, extended
    /// APIC id in AMD's 0x8000001e EAX), the logical-processor count in leaf 1, one thread per
    /// core and `vcpuCount` cores in one package (leaves 4, 0xb/0x1f, AMD's 0x80000008 ECX and
    /// 0x8000001e), and the "running under a hypervisor" bit (leaf 1 ECX[31]) that Linux checks.
    /// KVM_GET_SUPPORTED_CPUID passes the host's core count in 0x80000008 and zeroes 0x8000001e,
    /// which on AMD made every vCPU report extended APIC id 0 ("APIC ID mismatch").
    public mutating func normalize(apicID: UInt32, vcpuCount: Int) {
        let count = UInt32(max(1, min(vcpuCount, 255)))
        update(1) { e in
            e.ebx = (e.ebx & 0x0000_ffff) | (count << 16) | (apicID << 24)
            if count > 1 { e.edx |= 1 << 28 }   // HTT: "more than one logical processor"
            e.ecx |= 1 << 31
        }
        update(4) { e in
            // EAX[31:26]: cores per package - 1; EAX[25:14]: threads sharing this cache - 1.
            e.eax = (e.eax & 0x3fff) | (min(count - 1, 63) << 26)
        }
        update(0x8000_0008) { e in
            // ECX[7:0]: cores - 1 (NC); ECX[15:12]: APIC id bits for the core (ApicIdSize).
            e.ecx = (e.ecx & ~0xf0ff) | (CPUIDTable.bits(for: count) << 12) | (count - 1)
        }
        update(0x8000_001e) { e in
            e.eax = apicID                // extended APIC id
            e.ebx = apicID & 0xff         // core id; EBX[15:8] = threads per core - 1 = 0
            e.ecx = 0                     // node 0 of 1
            e.edx = 0
        }
        // Leaves 0xb/0x1f are rebuilt, not patched: KVM (6.x) returns only their subleaf 0, with
        // no core level, and a guest given that puts every vCPU in a package of its own.
        for leaf: UInt32 in [0xb, 0x1f] where entries.contains(where: { $0.function == leaf }) {
            entries.removeAll { $0.function == leaf }
            entries += CPUIDTable.extendedTopology(leaf: leaf, apicID: apicID, cpus: count)
        }
    }

    /// Leaf 0xb/0x1f for `cpus` single-thread cores in one package: subleaf 0 the SMT level
    /// (1 thread), subleaf 1 the core level (`cpus`, shift = bits of the core id), subleaf 2 the
    /// terminating invalid level; EDX is the x2APIC id throughout.
    static func extendedTopology(leaf: UInt32, apicID: UInt32, cpus: UInt32) -> [kvm_cpuid_entry2] {
        let levels: [(eax: UInt32, ebx: UInt32, type: UInt32)] = [(0, 1, 1), (bits(for: cpus), cpus, 2), (0, 0, 0)]
        return levels.enumerated().map { i, l in
            var e = kvm_cpuid_entry2()
            e.function = leaf
            e.index = UInt32(i)
            e.flags = UInt32(KVM_CPUID_FLAG_SIGNIFCANT_INDEX)
            e.eax = l.eax
            e.ebx = l.ebx
            e.ecx = (l.type << 8) | UInt32(i)
            e.edx = apicID
            return e
        }
    }

    static func bits(for count: UInt32) -> UInt32 {
        var b: UInt32 = 0
        while (1 << b) < count { b += 1 }
        return b
    }

    /// Sets the bit of `feature` in its leaf (which must be in the table), for features KVM
    /// emulates but does not report as supported (the TSC-deadline timer).
    public mutating func offer(_ f: CPUFeature) {
        for i in entries.indices where entries[i].function == f.leaf && entries[i].index == f.subleaf {
            let bit = UInt32(1) << f.bit
            switch f.register {
            case .eax: entries[i].eax |= bit
            case .ebx: entries[i].ebx |= bit
            case .ecx: entries[i].ecx |= bit
            case .edx: entries[i].edx |= bit
            }
        }
    }

    /// Clears the CPUID bits of `features`, so the guest never uses them.
    public mutating func hide(_ features: [CPUFeature]) {
        for f in features {
            for i in entries.indices where entries[i].function == f.leaf && entries[i].index == f.subleaf {
                let mask = ~(UInt32(1) << f.bit)
                switch f.register {
                case .eax: entries[i].eax &= mask
                case .ebx: entries[i].ebx &= mask
                case .ecx: entries[i].ecx &= mask
                case .edx: entries[i].edx &= mask
                }
            }
        }
        // Without XSAVE the extended-state leaf must not describe any state components.
        if features.contains(.xsave) {
            for i in entries.indices where entries[i].function == 0xd {
                entries[i].eax = 0; entries[i].ebx = 0; entries[i].ecx = 0; entries[i].edx = 0
            }
        }
    }

    public func isSet(_ f: CPUFeature) -> Bool {
        guard let e = entries.first(where: { $0.function == f.leaf && $0.index == f.subleaf }) else { return false }
        let r: UInt32
        switch f.register { case .eax: r = e.eax; case .ebx: r = e.ebx; case .ecx: r = e.ecx; case .edx: r = e.edx }
        return r & (1 << f.bit) != 0
    }

    public func apply(to vcpu: Vcpu) throws(KvmError) {
        _ = try KvmError.check(ckvm_set_cpuid2(vcpu.fd, entries, UInt32(entries.count)), "KVM_SET_CPUID2")
    }
}

extension kvm_cpuid_entry2: @retroactive @unchecked Sendable {
    var isIndexed: Bool { flags & UInt32(KVM_CPUID_FLAG_SIGNIFCANT_INDEX) != 0 }
}

/// One CPUID feature bit.
public struct CPUFeature: Sendable, Equatable, CustomStringConvertible {
    public enum Register: Sendable { case eax, ebx, ecx, edx }
    public let name: String
    public let leaf: UInt32
    public let subleaf: UInt32
    public let register: Register
    public let bit: UInt32

    public var description: String { name }

    public static let popcnt = CPUFeature(name: "popcnt", leaf: 1, subleaf: 0, register: .ecx, bit: 23)
    public static let xsave = CPUFeature(name: "xsave", leaf: 1, subleaf: 0, register: .ecx, bit: 26)
    public static let avx = CPUFeature(name: "avx", leaf: 1, subleaf: 0, register: .ecx, bit: 28)
    public static let rdrand = CPUFeature(name: "rdrand", leaf: 1, subleaf: 0, register: .ecx, bit: 30)
    public static let x2apic = CPUFeature(name: "x2apic", leaf: 1, subleaf: 0, register: .ecx, bit: 21)
    public static let tscDeadline = CPUFeature(name: "tsc_deadline_timer", leaf: 1, subleaf: 0, register: .ecx, bit: 24)
    public static let pcid = CPUFeature(name: "pcid", leaf: 1, subleaf: 0, register: .ecx, bit: 17)
    public static let fsgsbase = CPUFeature(name: "fsgsbase", leaf: 7, subleaf: 0, register: .ebx, bit: 0)
    public static let smep = CPUFeature(name: "smep", leaf: 7, subleaf: 0, register: .ebx, bit: 7)
    public static let erms = CPUFeature(name: "erms", leaf: 7, subleaf: 0, register: .ebx, bit: 9)
    public static let invpcid = CPUFeature(name: "invpcid", leaf: 7, subleaf: 0, register: .ebx, bit: 10)
    public static let rdseed = CPUFeature(name: "rdseed", leaf: 7, subleaf: 0, register: .ebx, bit: 18)
    public static let smap = CPUFeature(name: "smap", leaf: 7, subleaf: 0, register: .ebx, bit: 20)
    public static let avx2 = CPUFeature(name: "avx2", leaf: 7, subleaf: 0, register: .ebx, bit: 5)
    public static let umip = CPUFeature(name: "umip", leaf: 7, subleaf: 0, register: .ecx, bit: 2)
    public static let pku = CPUFeature(name: "pku", leaf: 7, subleaf: 0, register: .ecx, bit: 3)
    public static let la57 = CPUFeature(name: "la57", leaf: 7, subleaf: 0, register: .ecx, bit: 16)
    public static let rdpid = CPUFeature(name: "rdpid", leaf: 7, subleaf: 0, register: .ecx, bit: 22)

    /// Features whose instructions KVM's emulator cannot run. A PVM host (platform.md) emulates a
    /// guest without PVM support instruction by instruction, so hiding these lets a standard
    /// kernel get further; on VT-x/AMD-V nothing needs hiding.
    public static let unavailableToEmulator: [CPUFeature] = [
        .xsave, .avx, .avx2, .rdrand, .rdseed, .popcnt, .smap, .smep, .pku, .umip, .fsgsbase,
        .pcid, .invpcid, .la57, .rdpid, .tscDeadline, .x2apic,
    ]
}
