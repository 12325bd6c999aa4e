#if canImport(Glibc)
import Glibc
#endif
import Agent
import HostRuntime
import Hypervisor
import OCI
import VMM

/// `check`, as Kata's: can this host run containers, with which backend, and why not.
/// It runs a real probe: a tiny guest through the built-in VMM, timed.
enum CheckCommand {
    struct Item {
        let name: String
        let ok: Bool
        let detail: String
        /// Whether a failure stops containers from being created.
        let required: Bool
    }

    static func run(_ ctx: Context, json: Bool) -> Int32 {
        var items: [Item] = []
        let config: Configuration
        do { config = try ctx.configuration() } catch {
            items.append(Item(name: "configuration", ok: false, detail: error.description, required: true))
            return emit(items, backend: "none", probe: nil, json: json, canCreate: false)
        }
        items.append(Item(name: "configuration", ok: true, detail: config.path ?? "built-in defaults", required: true))

        let accel = Accelerator.probe()
        let choice = BackendChoice.decide(configured: config.hypervisor, host: accel)
        let onQEMU = choice.backend == .qemu
        items.append(Item(name: "cpu virtualization flags", ok: accel.hardwareVirt,
                          detail: accel.virtFlag.map { "\($0) present" } ?? "no vmx/svm in /proc/cpuinfo", required: false))
        items.append(Item(name: "KVM module", ok: accel.kvmModule != nil,
                          detail: accel.kvmModule.map { "\($0) loaded" } ?? "neither kvm_intel nor kvm_amd loaded", required: false))
        items.append(Item(name: "/dev/kvm", ok: accel.kvmDevice, detail: accel.kvmDevice ? "read/write" : "missing or not accessible", required: false))
        items.append(Item(name: "PVM", ok: !accel.pvm, detail: accel.pvm ? "kvm_pvm is loaded: standard guest kernels run emulated instruction by instruction" : "not in use", required: false))

        var probe: TinyGuestProbe.Report?
        if accel.kvmDevice {
            do {
                let kvm = try Kvm()
                items.append(Item(name: "KVM_CREATE_VM", ok: true, detail: "API version \(Kvm.apiVersion)", required: false))
                let missing = kvm.missing()
                items.append(Item(name: "KVM capabilities", ok: missing.isEmpty,
                                  detail: missing.isEmpty ? "all required present" : "missing " + missing.map(\.name).joined(separator: ", "), required: false))
            } catch {
                items.append(Item(name: "KVM_CREATE_VM", ok: false, detail: "\(error)", required: false))
            }
            let r = TinyGuestProbe.run()
            probe = r
            let prefix = "built-in VMM probe: "
            items.append(Item(name: "built-in VMM probe", ok: r.ran,
                              detail: r.text.hasPrefix(prefix) ? String(r.text.dropFirst(prefix.count)) : r.text, required: false))
        }

        // QEMU and virtiofsd are only needed when QEMU is the backend.
        let qemu = access(config.qemuPath, X_OK) == 0
        items.append(Item(name: "qemu", ok: qemu, detail: config.qemuPath, required: onQEMU))
        let vfsd = access(config.virtiofsdPath, X_OK) == 0
        items.append(Item(name: "virtiofsd", ok: vfsd, detail: config.virtiofsdPath, required: onQEMU))
        for (name, path) in [("guest kernel", config.kernel), ("guest initramfs", config.initrd)] {
            items.append(Item(name: name, ok: access(path, R_OK) == 0, detail: path, required: true))
        }

        // Last: the probe leaves this process in a throwaway network namespace.
        let net = NetworkPlumbing.probe()
        items.append(Item(name: "container networking", ok: net.ok,
                          detail: net.detail + (net.ok ? "" : "; containers with network interfaces cannot be created"), required: false))

        // The built-in VMM needs hardware virtualization: on PVM (or without /dev/kvm) a
        // configured builtin cannot boot our guest; auto then picks QEMU with KVM or TCG.
        let backend: String
        let builtinUsable = accel.kvmDevice && !accel.pvm
        if choice.backend == .builtin {
            backend = builtinUsable ? "builtin VMM (\(choice.reason))" : "builtin VMM, unusable here: " + accel.reason
        } else {
            let kind = config.accel == "auto" ? (accel.usable ? "kvm" : "tcg") : config.accel
            backend = "qemu, accelerator \(kind) (\(choice.reason))"
        }
        let canCreate = items.allSatisfy { $0.ok || !$0.required } && (onQEMU || builtinUsable)
        return emit(items, backend: backend, probe: probe, json: json, canCreate: canCreate)
    }

    static func emit(_ items: [Item], backend: String, probe: TinyGuestProbe.Report?, json: Bool, canCreate: Bool) -> Int32 {
        if json {
            var pairs: [(String, JSON)] = [
                ("canCreateContainers", JSON(canCreate)), ("backend", JSON(backend)),
                ("checks", .array(items.map { .object([("name", JSON($0.name)), ("ok", JSON($0.ok)), ("required", JSON($0.required)), ("detail", JSON($0.detail))]) })),
            ]
            if let p = probe, let parsed = try? JSONParser.parse(p.json) { pairs.append(("probe", parsed)) }
            print(JSONWriter.write(.object(pairs), pretty: true))
        } else {
            for i in items { print("\(i.ok ? "ok  " : (i.required ? "FAIL" : "no  ")) \(i.name): \(i.detail)") }
            print("backend: \(backend)")
            let failing = items.contains { !$0.ok && $0.required }
            print(canCreate ? "System is capable of running containers"
                  : "System cannot run containers: " + (failing ? "see FAIL lines above" : "the configured backend cannot run here"))
        }
        return canCreate ? 0 : 1
    }
}
