#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import OCI

/// The container's cgroup (v2) in the guest: every container process is placed in it, so
/// pause (cgroup.freeze), stats, the process list and `update` act on exactly them.
struct ContainerCgroup {
    static let root = "/sys/fs/cgroup"
    let path: String

    /// The VM holds one container, so its cgroup sits right under the root: enabling the
    /// controllers at one level instead of two runs less emulated kernel code at create.
    static func create(id: String) throws(SetupError) -> ContainerCgroup {
        let path = root + "/" + id
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw .sys("create cgroup \(path)") }
        // Delegate the controllers the kernel has (best effort: one missing controller
        // should not stop a container). The root is exempt from the no-internal-process rule.
        let available = (try? Posix.readFile(root + "/cgroup.controllers")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        var enable: [UInt8] = []
        for c in available.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            enable += Array((enable.isEmpty ? "+" : " +").utf8) + Array(c.utf8)
        }
        // One write for all of them: a controller the kernel refuses fails the whole write,
        // so fall back to one at a time.
        if !enable.isEmpty && (try? Posix.writeFileAtomicInPlace(root + "/cgroup.subtree_control", enable)) == nil {
            for c in available.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                try? Posix.writeFileAtomicInPlace(root + "/cgroup.subtree_control", Array("+\(c)".utf8))
            }
        }
        return ContainerCgroup(path: path)
    }

    /// Forks a child that starts inside this cgroup; falls back to fork + join.
    /// Returns (pid, joined): when `joined` is false the child must call `join()` itself.
    func fork() -> (pid: pid_t, joined: Bool) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            let pid = kata_fork_into_cgroup(fd)
            close(fd)  // in the parent, and in the child
            if pid >= 0 { return (pid, true) }
        }
        return (kata_fork(), false)
    }

    /// Moves `pid` (0: the caller) into the cgroup.
    func join(_ pid: pid_t = 0) throws(SetupError) {
        do { try Posix.writeFileAtomicInPlace(path + "/cgroup.procs", Array(String(pid).utf8)) }
        catch { throw SetupError("join cgroup: \(error)") }
    }

    func write(_ file: String, _ value: String) throws(SetupError) {
        do { try Posix.writeFileAtomicInPlace(path + "/" + file, Array(value.utf8)) }
        catch { throw SetupError("cgroup \(file) = \(value): \(error)") }
    }

    func read(_ file: String) -> String? {
        (try? Posix.readFile(path + "/" + file)).map { String(decoding: $0, as: UTF8.self).trimmingTrailingNewlines }
    }

    /// linux.resources to cgroup v2 files, with runc's conversions and its rule that 0 means
    /// "leave unchanged" (docker update sends every field, zeros included).
    func apply(_ resources: JSON) throws(SetupError) {
        if let mem = resources["memory"] {
            let limit = mem["limit"]?.int64 ?? 0
            if limit != 0 { try write("memory.max", limit < 0 ? "max" : String(limit)) }
            if let r = mem["reservation"]?.int64, r != 0 { try write("memory.low", r < 0 ? "max" : String(r)) }
            if let swap = mem["swap"]?.int64, swap != 0 {
                // OCI swap is memory+swap; cgroup v2 counts swap alone.
                if swap < 0 { try write("memory.swap.max", "max") }
                else {
                    let mem = limit > 0 ? limit : Int64(read("memory.max").flatMap { Int64($0) } ?? 0)
                    guard mem > 0 else { throw SetupError("memory.swap needs a memory limit") }
                    try write("memory.swap.max", String(max(0, swap - mem)))
                }
            }
        }
        if let cpu = resources["cpu"] {
            if let shares = cpu["shares"]?.uint64, shares > 0 {
                try write("cpu.weight", String(1 + ((max(2, min(shares, 262_144)) - 2) * 9999) / 262_142))
            }
            let quota = cpu["quota"]?.int64 ?? 0, period = cpu["period"]?.uint64 ?? 0
            if quota != 0 || period != 0 {
                // Without a period the kernel keeps the current one.
                let q = quota > 0 ? String(quota) : "max"
                try write("cpu.max", period != 0 ? "\(q) \(period)" : q)
            }
            if let cpus = cpu["cpus"]?.string, !cpus.isEmpty { try write("cpuset.cpus", cpus) }
            if let mems = cpu["mems"]?.string, !mems.isEmpty { try write("cpuset.mems", mems) }
        }
        if let limit = resources["pids"]?["limit"]?.int64, limit != 0 { try write("pids.max", limit < 0 ? "max" : String(limit)) }
    }

    /// Freezes or thaws, and waits until the kernel reports it done.
    func freeze(_ on: Bool) throws(SetupError) {
        try write("cgroup.freeze", on ? "1" : "0")
        for _ in 0..<500 {
            if (read("cgroup.events") ?? "").contains("frozen \(on ? 1 : 0)") { return }
            usleep(2000)
        }
        throw SetupError(on ? "container did not freeze" : "container did not thaw")
    }

    func processIDs() -> [pid_t] {
        (read("cgroup.procs") ?? "").split(separator: "\n").compactMap { pid_t($0) }
    }

    func keyValues(_ file: String) -> [(String, UInt64)] {
        (read(file) ?? "").split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 2, let v = UInt64(f[1]) else { return nil }
            return (String(f[0]), v)
        }
    }

    func number(_ file: String) -> UInt64 { read(file).flatMap { UInt64($0) } ?? 0 }

    /// runc's stats document (libcontainer types.Stats).
    func stats() -> JSON {
        let cpu = Dictionary(keyValues("cpu.stat"), uniquingKeysWith: { a, _ in a })
        let memStat = keyValues("memory.stat")
        let limit = read("memory.max").flatMap { UInt64($0) } ?? UInt64(Int64.max)
        return .object([
            ("cpu", .object([
                ("usage", .object([
                    ("total", JSON((cpu["usage_usec"] ?? 0) * 1000)), ("percpu", .array([])),
                    ("kernel", JSON((cpu["system_usec"] ?? 0) * 1000)), ("user", JSON((cpu["user_usec"] ?? 0) * 1000)),
                ])),
                ("throttling", .object([
                    ("periods", JSON(cpu["nr_periods"] ?? 0)), ("throttled_periods", JSON(cpu["nr_throttled"] ?? 0)),
                    ("throttled_time", JSON((cpu["throttled_usec"] ?? 0) * 1000)),
                ])),
            ])),
            ("memory", .object([
                ("cache", JSON(Dictionary(memStat, uniquingKeysWith: { a, _ in a })["file"] ?? 0)),
                ("usage", .object([("limit", JSON(limit)), ("usage", JSON(number("memory.current"))),
                                   ("max", JSON(number("memory.peak"))), ("failcnt", JSON(0))])),
                ("swap", .object([("limit", JSON(read("memory.swap.max").flatMap { UInt64($0) } ?? UInt64(Int64.max))),
                                  ("usage", JSON(number("memory.swap.current")))])),
                ("raw", .object(memStat.map { ($0.0, JSON($0.1)) })),
            ])),
            ("pids", .object([("current", JSON(number("pids.current"))),
                              ("limit", JSON(read("pids.max").flatMap { UInt64($0) } ?? 0))])),
            ("blkio", .object([])), ("hugetlb", .object([])),
        ])
    }

    /// The processes, with what `top` shows: pid, ppid, uid, state, command line.
    func processTable() -> JSON {
        .array(processIDs().map { pid in
            let stat = (try? Posix.readFile("/proc/\(pid)/stat")).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let after = stat.lastIndex(of: ")").map { stat[stat.index(after: $0)...].split(separator: " ") } ?? []
            let status = (try? Posix.readFile("/proc/\(pid)/status")).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let uid = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.map(String.init) ?? "0"
            var args = ((try? Posix.readFile("/proc/\(pid)/cmdline")) ?? []).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if args.isEmpty, let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") {
                args = ["[" + stat[stat.index(after: open)..<close] + "]"]
            }
            return .object([
                ("pid", JSON(Int(pid))), ("ppid", JSON(Int(after.count > 1 ? after[1] : "0") ?? 0)),
                ("uid", JSON(Int(uid) ?? 0)), ("state", JSON(after.first.map(String.init) ?? "?")),
                ("args", .array(args.map(JSON.init))),
            ])
        })
    }
}
