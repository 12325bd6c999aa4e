#if canImport(Glibc)
import Glibc
#endif

/// Whether /dev/kvm can run a standard Linux guest at native speed.
public enum Accelerator {
    /// The host facts the choice rests on; tests build them by hand.
    public struct Probe: Sendable, Equatable {
        /// /dev/kvm opens read/write for us.
        public var kvmDevice: Bool
        /// "vmx" or "svm" when /proc/cpuinfo lists it.
        public var virtFlag: String?
        /// "kvm_intel" or "kvm_amd" when loaded (or built in: /sys/module has it either way).
        public var kvmModule: String?
        /// The software PVM hypervisor (kvm_pvm) drives /dev/kvm.
        public var pvm: Bool

        public init(kvmDevice: Bool, virtFlag: String?, kvmModule: String?, pvm: Bool) {
            self.kvmDevice = kvmDevice; self.virtFlag = virtFlag; self.kvmModule = kvmModule; self.pvm = pvm
        }

        public var hardwareVirt: Bool { virtFlag != nil }
        /// A standard guest kernel runs natively: VT-x/AMD-V, its KVM module, /dev/kvm, not PVM.
        public var usable: Bool { kvmDevice && hardwareVirt && kvmModule != nil && !pvm }
        public var reason: String {
            if !kvmDevice { return "/dev/kvm is missing or not accessible" }
            if pvm { return "/dev/kvm is PVM (kvm_pvm module): it emulates standard guest kernels instruction by instruction" }
            guard let flag = virtFlag else { return "the CPU has no vmx/svm flag" }
            guard let module = kvmModule else {
                return "the CPU has \(flag) but neither kvm_intel nor kvm_amd is loaded"
            }
            return "hardware virtualization: \(flag), \(module) loaded, /dev/kvm read/write"
        }
    }

    /// The first "flags" line's vmx or svm, if any.
    public static func virtualizationFlag(cpuinfo: String) -> String? {
        for line in cpuinfo.split(separator: "\n") where line.hasPrefix("flags") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            return words.contains("vmx") ? "vmx" : words.contains("svm") ? "svm" : nil
        }
        return nil
    }

    public static func probe() -> Probe {
        let dev = access("/dev/kvm", R_OK | W_OK) == 0
        let pvm = access("/sys/module/kvm_pvm", F_OK) == 0
        let module = ["kvm_intel", "kvm_amd"].first { access("/sys/module/" + $0, F_OK) == 0 }
        return Probe(kvmDevice: dev, virtFlag: virtualizationFlag(cpuinfo: readCPUInfo()), kvmModule: module, pvm: pvm)
    }

    static func readCPUInfo() -> String {
        guard let f = fopen("/proc/cpuinfo", "r") else { return "" }
        defer { fclose(f) }
        var text = ""
        var line = [CChar](repeating: 0, count: 8192)
        while fgets(&line, Int32(line.count), f) != nil {
            let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            text += s
            if s.hasPrefix("flags") { break }   // the first CPU's flags are all we need
        }
        return text
    }
}

/// Which hypervisor backend runs a VM, and why (shown by `check` and `env`).
public struct BackendChoice: Sendable, Equatable {
    public enum Backend: String, Sendable { case builtin, qemu }
    public let backend: Backend
    public let reason: String

    public init(backend: Backend, reason: String) { self.backend = backend; self.reason = reason }

    /// `configured` is hypervisor.backend (or KATA_HYPERVISOR): "builtin" and "qemu" are taken
    /// as given; "auto" picks the built-in VMM exactly when the host's KVM runs standard guests
    /// natively (`Probe.usable`), QEMU otherwise, whatever the container (both backends have
    /// virtio-net, so network interfaces do not matter).
    public static func decide(configured: String, host: Accelerator.Probe) -> BackendChoice {
        switch configured {
        case "builtin": return BackendChoice(backend: .builtin, reason: "configured")
        case "qemu": return BackendChoice(backend: .qemu, reason: "configured")
        default:
            return host.usable
                ? BackendChoice(backend: .builtin, reason: "auto: " + host.reason)
                : BackendChoice(backend: .qemu, reason: "auto: " + host.reason)
        }
    }
}
