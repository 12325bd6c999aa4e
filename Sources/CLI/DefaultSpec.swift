import OCI

/// The config.json `spec` writes: runc's defaults, so bundles made for runc and for us match.
enum DefaultSpec {
    static func make(rootless: Bool, uid: UInt32, gid: UInt32) -> JSON {
        func strings(_ a: [String]) -> JSON { .array(a.map(JSON.init)) }
        func mount(_ dest: String, _ type: String, _ src: String, _ opts: [String]? = nil) -> JSON {
            var p: [(String, JSON)] = [("destination", JSON(dest)), ("type", JSON(type)), ("source", JSON(src))]
            if let o = opts { p.append(("options", strings(o))) }
            return .object(p)
        }
        let caps = strings(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
        var mounts: [JSON] = [
            mount("/proc", "proc", "proc"),
            mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            mount("/dev/pts", "devpts", "devpts",
                  ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] + (rootless ? [] : ["gid=5"])),
            mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        ]
        mounts.append(rootless ? mount("/sys", "none", "/sys", ["rbind", "nosuid", "noexec", "nodev", "ro"])
                               : mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]))
        mounts.append(mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]))
        var ns = ["pid", "network", "ipc", "uts", "mount"]
        if rootless { ns.removeAll { $0 == "network" }; ns.append("user") }
        var linux: [(String, JSON)] = []
        if rootless {
            let map = { (id: UInt32) in JSON.array([.object([("containerID", JSON(0)), ("hostID", JSON(Int(id))), ("size", JSON(1))])]) }
            linux += [("uidMappings", map(uid)), ("gidMappings", map(gid))]
        } else {
            linux.append(("resources", .object([("devices", .array([.object([("allow", JSON(false)), ("access", JSON("rwm"))])]))])))
        }
        linux += [
            ("namespaces", .array(ns.map { .object([("type", JSON($0))]) })),
            ("maskedPaths", strings(["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                                     "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"])),
            ("readonlyPaths", strings(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"])),
        ]
        return .object([
            ("ociVersion", JSON("1.0.2-dev")),
            ("process", .object([
                ("terminal", JSON(true)),
                ("user", .object([("uid", JSON(0)), ("gid", JSON(0))])),
                ("args", strings(["sh"])),
                ("env", strings(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"])),
                ("cwd", JSON("/")),
                ("capabilities", .object([("bounding", caps), ("effective", caps), ("permitted", caps), ("ambient", caps)])),
                ("rlimits", .array([.object([("type", JSON("RLIMIT_NOFILE")), ("hard", JSON(1024)), ("soft", JSON(1024))])])),
                ("noNewPrivileges", JSON(true)),
            ])),
            ("root", .object([("path", JSON("rootfs")), ("readonly", JSON(true))])),
            ("hostname", JSON("runc")),
            ("mounts", .array(mounts)),
            ("linux", .object(linux)),
        ])
    }
}
