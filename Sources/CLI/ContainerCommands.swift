#if canImport(Glibc)
import Glibc
#endif
import Agent
import HostRuntime
import OCI

/// pause, resume, ps, top, events and update: requests to a live container's keeper.
enum ContainerCommands {
    static func live(_ ctx: Context, _ id: String, allow: [ContainerState.Status]) throws(RuntimeError) -> (String, ContainerState.Status) {
        let store = ctx.store
        let st = try store.load(id)
        let status = store.currentStatus(st)
        guard allow.contains(status) else {
            if allow == [.paused] { throw RuntimeError("container not paused") }
            if allow == [.running, .created] { throw RuntimeError("container not running or created: \(status.rawValue)") }
            throw RuntimeError("container not running")
        }
        return (store.directory(id), status)
    }

    static func pause(_ ctx: Context, id: String, on: Bool) throws(RuntimeError) {
        let (dir, _) = try live(ctx, id, allow: on ? [.running, .created] : [.paused])
        let lock = try ctx.store.lock(id)
        defer { withExtendedLifetime(lock) {} }
        _ = try ControlSocket.request(stateDir: dir, on ? "pause" : "resume")
    }

    /// runc ps: json is the host PIDs standing for the container's processes; the table is
    /// the host's `ps` output for those PIDs.
    static func ps(_ ctx: Context, id: String, format: String, psArgs: [String]) throws(RuntimeError) -> String {
        let (dir, _) = try live(ctx, id, allow: [.created, .running, .paused])
        let pidsJSON = try ControlSocket.request(stateDir: dir, "pids")
        if format == "json" {
            guard psArgs.isEmpty else { throw RuntimeError("ps options cannot be used with --format json") }
            return pidsJSON
        }
        guard format == "table" else { throw RuntimeError("invalid format option \"\(format)\" (table or json)") }
        let pids = Set(((try? JSONParser.parse(pidsJSON))?.array ?? []).compactMap { $0.int64 })
        let args = psArgs.isEmpty ? ["-ef"] : psArgs
        let out = capture(["ps"] + args)
        var lines = out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let header = lines.first, let pidColumn = header.split(separator: " ").firstIndex(of: "PID") else {
            throw RuntimeError("ps output has no PID column")
        }
        lines.removeFirst()
        let rows = lines.filter { line in
            let f = line.split(separator: " ")
            return f.count > pidColumn && Int64(f[pidColumn]).map(pids.contains) == true
        }
        return ([header] + rows).joined(separator: "\n")
    }

    /// Kata's top: the process table inside the guest.
    static func top(_ ctx: Context, id: String) throws(RuntimeError) -> String {
        let (dir, _) = try live(ctx, id, allow: [.created, .running, .paused])
        let body = try ControlSocket.request(stateDir: dir, "processes")
        let procs = (try? JSONParser.parse(body))?.array ?? []
        var table = [["UID", "PID", "PPID", "STAT", "COMMAND"]]
        for p in procs {
            table.append([String(p["uid"]?.int64 ?? 0), String(p["pid"]?.int64 ?? 0), String(p["ppid"]?.int64 ?? 0),
                          p["state"]?.string ?? "?", (p["args"]?.array ?? []).compactMap(\.string).joined(separator: " ")])
        }
        return ListCommand.tabulate(table)
    }

    /// runc events: {"type":"stats","id":..,"data":{..}} once with --stats, else every interval
    /// until the container stops.
    static func events(_ ctx: Context, id: String, statsOnce: Bool, interval: String) throws(RuntimeError) -> Int32 {
        guard let every = parseDuration(interval), every > 0 else { throw RuntimeError("invalid --interval \"\(interval)\"") }
        repeat {
            let (dir, _) = try live(ctx, id, allow: [.created, .running, .paused])
            let stats = try ControlSocket.request(stateDir: dir, "stats")
            print("{\"type\":\"stats\",\"id\":\(JSONWriter.quote(id)),\"data\":\(stats)}")
            fflush(nil)  // one event per line, as it happens
            if statsOnce { return 0 }
            usleep(UInt32(min(every, 3600) * 1_000_000))
        } while ctx.store.currentStatus((try? ctx.store.load(id)) ?? ContainerState(id: id, bundle: "", rootfs: "", annotations: [:])) != .stopped
        return 0
    }

    /// runc flags with no counterpart in the guest's cgroup v2 controllers.
    static let unsupportedUpdateFlags = ["blkio-weight", "cpu-rt-period", "cpu-rt-runtime", "kernel-memory",
                                         "kernel-memory-tcp", "l3-cache-schema", "mem-bw-schema"]

    static func update(_ ctx: Context, id: String, _ a: ParsedArgs) throws(RuntimeError) {
        if let f = unsupportedUpdateFlags.first(where: { a.value($0) != nil }) {
            throw RuntimeError("--\(f) is not supported by kata-runtime (no such cgroup v2 control in the guest)")
        }
        let (dir, _) = try live(ctx, id, allow: [.created, .running, .paused])
        var r: JSON = .object([])
        if let src = a.value("resources") {
            let bytes: [UInt8]
            do { bytes = src == "-" ? try Posix.readToEnd(0) : try Posix.readFile(src) } catch { throw RuntimeError("read resources \(src): \(error)") }
            do { r = try JSONParser.parse(bytes) } catch { throw RuntimeError("resources: \(error)") }
            guard r.objectPairs != nil else { throw RuntimeError("resources: expected a JSON object") }
        }
        func set(_ group: String, _ key: String, _ v: JSON) {
            r = r.setting(group, (r[group] ?? .object([])).setting(key, v))
        }
        func bytes(_ flag: String) throws(RuntimeError) -> Int64? {
            guard let v = a.value(flag) else { return nil }
            guard let n = parseBytes(v) else { throw RuntimeError("invalid value for --\(flag): \"\(v)\"") }
            return n
        }
        func int(_ flag: String) throws(RuntimeError) -> Int64? {
            guard let v = a.value(flag) else { return nil }
            guard let n = Int64(v) else { throw RuntimeError("invalid value for --\(flag): \"\(v)\"") }
            return n
        }
        if let v = try bytes("memory") { set("memory", "limit", JSON(v)) }
        if let v = try bytes("memory-reservation") { set("memory", "reservation", JSON(v)) }
        if let v = try bytes("memory-swap") { set("memory", "swap", JSON(v)) }
        if let v = try int("cpu-quota") { set("cpu", "quota", JSON(v)) }
        if let v = try int("cpu-period") { set("cpu", "period", JSON(v)) }
        if let v = try int("cpu-share") { set("cpu", "shares", JSON(v)) }
        if let v = a.value("cpuset-cpus") { set("cpu", "cpus", JSON(v)) }
        if let v = a.value("cpuset-mems") { set("cpu", "mems", JSON(v)) }
        if let v = try int("pids-limit") { set("pids", "limit", JSON(v)) }
        let body = Array(JSONWriter.write(r).utf8)
        let fd = try ControlSocket.connect(stateDir: dir)
        defer { close(fd) }
        do { try Posix.writeAll(fd, Array("update \(body.count)\n".utf8) + body) } catch { throw RuntimeError("keeper: \(error)") }
        _ = try ControlSocket.expectOK(fd, what: "update", timeoutMs: 60_000)
    }

    static let updateFlags = [
        FlagSpec("resources", "r", value: true), FlagSpec("blkio-weight", value: true), FlagSpec("cpu-period", value: true),
        FlagSpec("cpu-quota", value: true), FlagSpec("cpu-share", value: true), FlagSpec("cpu-rt-period", value: true),
        FlagSpec("cpu-rt-runtime", value: true), FlagSpec("cpuset-cpus", value: true), FlagSpec("cpuset-mems", value: true),
        FlagSpec("kernel-memory", value: true), FlagSpec("kernel-memory-tcp", value: true), FlagSpec("memory", value: true),
        FlagSpec("memory-reservation", value: true), FlagSpec("memory-swap", value: true), FlagSpec("pids-limit", value: true),
        FlagSpec("l3-cache-schema", value: true), FlagSpec("mem-bw-schema", value: true),
    ]

    /// "5s", "1m30s", "250ms", "2h".
    static func parseDuration(_ s: String) -> Double? {
        var total = 0.0, num = ""
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            if c.isNumber || c == "." { num.append(c); i = s.index(after: i); continue }
            var unit = String(c)
            if c == "m", s.index(after: i) < s.endIndex, s[s.index(after: i)] == "s" { unit = "ms"; i = s.index(after: i) }
            guard let v = Double(num) else { return nil }
            switch unit {
            case "h": total += v * 3600
            case "m": total += v * 60
            case "s": total += v
            case "ms": total += v / 1000
            default: return nil
            }
            num = ""
            i = s.index(after: i)
        }
        if !num.isEmpty { guard let v = Double(num) else { return nil }; total += v }
        return total
    }

    /// "512m", "1G", "1024" as docker's RAMInBytes: binary units; -1 means unlimited.
    static func parseBytes(_ s: String) -> Int64? {
        if s == "-1" { return -1 }
        let lower = s.lowercased()
        let units: [(String, Int64)] = [("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30), ("tb", 1 << 40),
                                        ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40), ("b", 1)]
        for (suffix, mult) in units where lower.hasSuffix(suffix) {
            guard let v = Double(lower.dropLast(suffix.count)), v >= 0 else { return nil }
            return Int64(v * Double(mult))
        }
        return Int64(lower).flatMap { $0 >= 0 ? $0 : nil }
    }

    /// Runs a host command and returns its standard output.
    static func capture(_ argv: [String]) -> String {
        guard let p = popen(argv.map(\.shellQuoted).joined(separator: " "), "r") else { return "" }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buf, 1, 4096, p)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        pclose(p)
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    /// Shell single-quoting for popen.
    var shellQuoted: String { "'" + split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'" }
}
