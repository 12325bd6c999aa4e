#if canImport(Glibc)
import Glibc
#endif

/// Whether /dev/kvm can run a standard Linux guest at native speed.
public enum Accelerator {
    public struct Probe: Sendable {
        public var kvmDevice: Bool
        public var hardwareVirt: Bool
        public var pvm: Bool
        public var usable: Bool { kvmDevice && hardwareVirt && !pvm }
        public var reason: String {
            if !kvmDevice { return "/dev/kvm is missing or not accessible" }
            if pvm { return "/dev/kvm is PVM (kvm_pvm module): it emulates standard guest kernels instruction by instruction" }
            if !hardwareVirt { return "the CPU has no vmx/svm flag" }
            return "hardware virtualization available"
        }
    }

    public static func probe() -> Probe {
        let dev = access("/dev/kvm", R_OK | W_OK) == 0
        let pvm = access("/sys/module/kvm_pvm", F_OK) == 0
        var hw = false
        if let f = fopen("/proc/cpuinfo", "r") {
            var line = [CChar](repeating: 0, count: 8192)
            while fgets(&line, Int32(line.count), f) != nil {
                let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if s.hasPrefix("flags") {
                    hw = s.split(separator: " ").contains { $0 == "vmx" || $0 == "svm" || $0 == "vmx\n" || $0 == "svm\n" }
                    break
                }
            }
            fclose(f)
        }
        return Probe(kvmDevice: dev, hardwareVirt: hw, pvm: pvm)
    }
}
