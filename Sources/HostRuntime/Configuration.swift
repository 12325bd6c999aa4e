#if canImport(Glibc)
import Glibc
#endif
import Agent

/// /etc/kata-runtime/configuration.toml: where the guest image is and how VMs are sized.
public struct Configuration: Sendable {
    public static let defaultPath = "/etc/kata-runtime/configuration.toml"
    public static let defaultShare = "/usr/share/kata-runtime"

    /// "auto", "qemu" or "builtin".
    public var hypervisor = "auto"
    public var qemuPath = "/usr/bin/qemu-system-x86_64"
    public var virtiofsdPath = "/usr/lib/qemu/virtiofsd"
    public var kernel = defaultShare + "/vmlinux"
    public var initrd = defaultShare + "/kata-initrd.img"
    public var vcpus = 1
    public var memoryMiB = 512
    public var kernelParams = ""
    /// QEMU accelerator: "auto" probes KVM, "kvm" or "tcg" force one.
    public var accel = "auto"
    /// Seconds to wait for the guest agent before giving up.
    public var bootTimeout = 60
    public var path: String? = nil

    public init() {}

    /// Reads the file named by $KATA_CONFIG, else the default path; no file means defaults.
    public static func load(_ explicit: String? = nil) throws(TOMLError) -> Configuration {
        var c = Configuration()
        let env = getenv("KATA_CONFIG").map { String(cString: $0) }
        let path = explicit ?? env ?? defaultPath
        guard let bytes = try? Posix.readFile(path) else {
            if explicit != nil || env != nil { throw TOMLError(description: "cannot read configuration \(path)") }
            c.applyEnvironment()
            try c.validate(path: "defaults")
            return c
        }
        c.path = path
        let t = try TOML.parse(String(decoding: bytes, as: UTF8.self), file: path)
        func str(_ k: String, _ v: inout String) throws(TOMLError) {
            guard let x = t[k] else { return }
            guard case .string(let s) = x else { throw TOMLError(description: "\(path): \(k) must be a string") }
            v = s
        }
        func int(_ k: String, _ v: inout Int) throws(TOMLError) {
            guard let x = t[k] else { return }
            guard case .integer(let i) = x, i > 0 else { throw TOMLError(description: "\(path): \(k) must be a positive integer") }
            v = i
        }
        try str("hypervisor.backend", &c.hypervisor)
        try str("hypervisor.qemu_path", &c.qemuPath)
        try str("hypervisor.virtiofsd_path", &c.virtiofsdPath)
        try str("hypervisor.kernel", &c.kernel)
        try str("hypervisor.initrd", &c.initrd)
        try str("hypervisor.kernel_params", &c.kernelParams)
        try str("hypervisor.accel", &c.accel)
        try int("hypervisor.default_vcpus", &c.vcpus)
        try int("hypervisor.default_memory", &c.memoryMiB)
        try int("runtime.boot_timeout", &c.bootTimeout)
        c.applyEnvironment()
        try c.validate(path: path)
        return c
    }

    func validate(path: String) throws(TOMLError) {
        guard ["auto", "qemu", "builtin"].contains(hypervisor) else {
            let fromEnv = getenv("KATA_HYPERVISOR") != nil ? " (set by KATA_HYPERVISOR)" : ""
            throw TOMLError(description: "\(path): hypervisor.backend must be auto, qemu or builtin, not \"\(hypervisor)\"\(fromEnv)")
        }
        guard ["auto", "kvm", "tcg"].contains(accel) else {
            throw TOMLError(description: "\(path): hypervisor.accel must be auto, kvm or tcg, not \"\(accel)\"")
        }
    }

    /// KATA_HYPERVISOR forces a backend for one call.
    mutating func applyEnvironment() {
        if let h = getenv("KATA_HYPERVISOR") { hypervisor = String(cString: h) }
    }
}
