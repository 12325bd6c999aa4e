#if canImport(Glibc)
import Glibc
#endif
import Agent
import Guest
import HostRuntime
import Hypervisor
import OCI
import SyscallFilter

/// `features` (runc's JSON, stating only what kata-runtime really does) and Kata's `env`.
enum InfoCommands {
    static func features() -> String {
        func strings(_ a: [String]) -> JSON { .array(a.map(JSON.init)) }
        let mountOptions = ["async", "atime", "bind", "dev", "diratime", "dirsync", "exec", "mand", "noatime", "nodev",
                            "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid", "private", "rbind",
                            "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "rstrictatime", "runbindable", "rw",
                            "shared", "slave", "strictatime", "suid", "sync", "unbindable"]
        let doc: JSON = .object([
            ("ociVersionMin", JSON("1.0.0")), ("ociVersionMax", JSON(Version.specVersion)),
            ("hooks", strings(["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"])),
            ("mountOptions", strings(mountOptions)),
            ("linux", .object([
                // The user namespace is not supported yet; time namespaces are not offered.
                ("namespaces", strings(["cgroup", "ipc", "mount", "network", "pid", "uts"])),
                ("capabilities", strings(CapabilityNames.known)),
                ("cgroup", .object([("v1", JSON(false)), ("v2", JSON(true)), ("systemd", JSON(false)), ("systemdUser", JSON(false))])),
                ("seccomp", .object([
                    ("enabled", JSON(true)),
                    ("actions", strings(Seccomp.supportedActions)),
                    ("operators", strings(Seccomp.operators)),
                    ("archs", strings(Seccomp.architectures)),
                    ("knownFlags", strings(Seccomp.knownFlags)),
                    ("supportedFlags", strings(Seccomp.knownFlags)),
                ])),
                ("apparmor", .object([("enabled", JSON(false))])),
                ("selinux", .object([("enabled", JSON(false))])),
            ])),
            ("annotations", .object([
                ("io.github.seccomp.libseccomp.version", JSON(SeccompFilter.libraryVersion)),
                ("io.katacontainers.runtime.version", JSON(Version.number)),
                ("io.katacontainers.runtime.isolation", JSON("vm")),
            ])),
        ])
        return JSONWriter.write(doc, pretty: true)
    }

    static func env(_ ctx: Context, json: Bool) throws(RuntimeError) -> String {
        let c = try ctx.configuration()
        let probe = Accelerator.probe()
        let choice = BackendChoice.decide(configured: c.hypervisor, host: probe)
        let qemuVersion = ContainerCommands.capture([c.qemuPath, "--version"]).split(separator: "\n").first.map(String.init) ?? "not found"
        let kernelRelease = (try? Posix.readFile(c.kernel)) != nil ? releaseOf(kernel: c.kernel) : "missing"
        let sections: [(String, [(String, JSON)])] = [
            ("Runtime", [("Version", JSON(Version.number)), ("OCISpec", JSON(Version.specVersion)),
                         ("Path", JSON(Context.selfExecutable())), ("Root", JSON(ctx.root)),
                         ("Config", JSON(c.path ?? "built-in defaults (\(Configuration.defaultPath) not found)"))]),
            ("Hypervisor", [("Backend", JSON(choice.backend.rawValue)), ("BackendReason", JSON(choice.reason)),
                            ("Configured", JSON(c.hypervisor)),
                            ("Accelerator", JSON(c.accel == "auto" ? (probe.usable ? "kvm" : "tcg") : c.accel)),
                            ("KVMUsable", JSON(probe.usable)), ("Reason", JSON(probe.reason)),
                            ("QEMU", JSON(c.qemuPath)), ("QEMUVersion", JSON(qemuVersion)), ("Virtiofsd", JSON(c.virtiofsdPath)),
                            ("DefaultVCPUs", JSON(c.vcpus)), ("DefaultMemoryMiB", JSON(c.memoryMiB))]),
            ("Guest", [("Kernel", JSON(c.kernel)), ("KernelRelease", JSON(kernelRelease)), ("Initrd", JSON(c.initrd)),
                       ("KernelParams", JSON(c.kernelParams)), ("BootTimeoutSeconds", JSON(c.bootTimeout))]),
        ]
        if json { return JSONWriter.write(.object(sections.map { ($0.0, .object($0.1)) }), pretty: true) }
        var out = ""
        for (name, pairs) in sections {
            out += "[\(name)]\n"
            for (k, v) in pairs { out += "  \(k) = \(v.string.map { JSONWriter.quote($0) } ?? JSONWriter.write(v))\n" }
        }
        return String(out.dropLast())
    }

    /// The release string of our guest kernel, as the build cached it next to the kernel.
    static func releaseOf(kernel: String) -> String {
        // vmlinux embeds "Linux version <release> (" in its banner.
        guard let bytes = try? Posix.readFile(kernel) else { return "unknown" }
        let needle = Array("Linux version ".utf8)
        var i = 0
        while i + needle.count < bytes.count {
            if bytes[i] == needle[0] && Array(bytes[i..<i + needle.count]) == needle {
                let start = i + needle.count
                var end = start
                while end < bytes.count && bytes[end] != 0x20 && end - start < 64 { end += 1 }
                return String(decoding: bytes[start..<end], as: UTF8.self)
            }
            i += 1
        }
        return "unknown"
    }
}
