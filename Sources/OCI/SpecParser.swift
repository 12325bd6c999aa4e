/// Reads and validates config.json / process.json documents.
public enum SpecParser {
    /// runc accepts any 1.x runtime-spec document; so do we.
    public static func checkVersion(_ v: String) throws(SpecError) {
        let parts = v.split(separator: ".")
        guard parts.count >= 2, parts[0] == "1", parts.dropFirst().allSatisfy({ p in p.first.map { $0.isNumber } ?? false }) else {
            throw SpecError("unsupported ociVersion \"\(v)\" (supported: 1.x)")
        }
    }

    public static func parse(_ bytes: [UInt8], file: String = "config.json") throws(SpecError) -> Spec {
        let json: JSON
        do { json = try JSONParser.parse(bytes) } catch {
            throw SpecError("\(file): \(error.description)")
        }
        do { return try spec(json) } catch {
            throw SpecError("\(file): \(error.message)")
        }
    }

    static func spec(_ json: JSON) throws(SpecError) -> Spec {
        let top = Field(json, "")
        guard json.objectPairs != nil else { throw SpecError("expected a JSON object at the top level") }
        let version = try top["ociVersion"].requiredString()
        try checkVersion(version)
        var root: Spec.Root?
        if top["root"].present {
            root = Spec.Root(path: try top["root"]["path"].requiredString(),
                             readonly: try top["root"]["readonly"].bool() ?? false)
            if root!.path.isEmpty { throw SpecError("root.path must not be empty") }
        }
        var mounts: [Spec.Mount] = []
        for m in try top["mounts"].array() {
            let dest = try m["destination"].requiredString()
            guard dest.hasPrefix("/") else { throw SpecError("\(m.path).destination: \"\(dest)\" is not an absolute path") }
            mounts.append(Spec.Mount(destination: dest, type: try m["type"].string(),
                                     source: try m["source"].string(), options: try m["options"].strings()))
        }
        let l = top["linux"]
        var linux = Spec.Linux()
        for n in try l["namespaces"].array() {
            let t = try n["type"].requiredString()
            let known = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]
            guard known.contains(t) else { throw SpecError("\(n.path).type: unknown namespace \"\(t)\"") }
            linux.namespaces.append(Spec.Namespace(type: t, path: try n["path"].string()))
        }
        linux.maskedPaths = try l["maskedPaths"].strings()
        linux.readonlyPaths = try l["readonlyPaths"].strings()
        for d in try l["devices"].array() {
            linux.devices.append(Spec.Device(
                path: try d["path"].requiredString(), type: try d["type"].requiredString(),
                major: try d["major"].int64() ?? 0, minor: try d["minor"].int64() ?? 0,
                fileMode: try d["fileMode"].uint32(), uid: try d["uid"].uint32(), gid: try d["gid"].uint32()))
        }
        linux.sysctl = try l["sysctl"].stringMap()
        linux.rootfsPropagation = try l["rootfsPropagation"].string()
        linux.resources = try l["resources"].object()
        linux.seccomp = try SeccompParser.parse(l["seccomp"])
        linux.cgroupsPath = try l["cgroupsPath"].string()

        var hooks = Spec.Hooks()
        let h = top["hooks"]
        hooks.prestart = try parseHooks(h["prestart"])
        hooks.createRuntime = try parseHooks(h["createRuntime"])
        hooks.createContainer = try parseHooks(h["createContainer"])
        hooks.startContainer = try parseHooks(h["startContainer"])
        hooks.poststart = try parseHooks(h["poststart"])
        hooks.poststop = try parseHooks(h["poststop"])

        return Spec(ociVersion: version,
                    process: top["process"].present ? try process(top["process"]) : nil,
                    root: root, hostname: try top["hostname"].string(), domainname: try top["domainname"].string(),
                    mounts: mounts, annotations: try top["annotations"].stringMap(),
                    hooks: hooks, linux: linux, raw: json)
    }

    static func parseHooks(_ f: Field) throws(SpecError) -> [Spec.Hook] {
        var out: [Spec.Hook] = []
        for e in try f.array() {
            let path = try e["path"].requiredString()
            guard path.hasPrefix("/") else { throw SpecError("\(e.path).path: \"\(path)\" is not an absolute path") }
            let t = try e["timeout"].int64()
            if let t, t <= 0 { throw SpecError("\(e.path).timeout must be positive") }
            out.append(Spec.Hook(path: path, args: try e["args"].strings(), env: try e["env"].strings(),
                                 timeout: t.map { Int($0) }))
        }
        return out
    }

    /// Parses exec's process.json.
    public static func parseProcess(_ bytes: [UInt8], file: String = "process.json") throws(SpecError) -> Process {
        let json: JSON
        do { json = try JSONParser.parse(bytes) } catch { throw SpecError("\(file): \(error.description)") }
        do { return try process(Field(json, "")) } catch { throw SpecError("\(file): \(error.message)") }
    }

    static func process(_ p: Field) throws(SpecError) -> Process {
        guard p.value?.objectPairs != nil else { throw p.wrongType("object") }
        let args = try p["args"].strings()
        guard !args.isEmpty, !args[0].isEmpty else { throw SpecError("\(p.path.isEmpty ? "" : p.path + ".")args must not be empty") }
        let cwd = try p["cwd"].string() ?? "/"
        guard cwd.hasPrefix("/") else { throw SpecError("\(p["cwd"].path): \"\(cwd)\" is not an absolute path") }
        var proc = Process(args: args, env: try p["env"].strings(), cwd: cwd)
        proc.terminal = try p["terminal"].bool() ?? false
        if p["consoleSize"].present {
            proc.consoleSize = (try p["consoleSize"]["height"].uint32() ?? 0, try p["consoleSize"]["width"].uint32() ?? 0)
        }
        let u = p["user"]
        proc.uid = try u["uid"].uint32() ?? 0
        proc.gid = try u["gid"].uint32() ?? 0
        proc.umask = try u["umask"].uint32()
        for g in try u["additionalGids"].array() {
            guard let v = try g.uint32() else { throw g.wrongType("integer") }
            proc.additionalGids.append(v)
        }
        for r in try p["rlimits"].array() {
            let t = try r["type"].requiredString()
            guard Rlimits.resource(t) != nil else { throw SpecError("\(r.path).type: unknown rlimit \"\(t)\"") }
            proc.rlimits.append(Process.Rlimit(type: t, hard: try r["hard"].uint64() ?? 0, soft: try r["soft"].uint64() ?? 0))
        }
        proc.noNewPrivileges = try p["noNewPrivileges"].bool() ?? false
        if p["capabilities"].present {
            let c = p["capabilities"]
            _ = try c.object()
            var caps = Process.Capabilities()
            caps.bounding = try c["bounding"].strings()
            caps.effective = try c["effective"].strings()
            caps.inheritable = try c["inheritable"].strings()
            caps.permitted = try c["permitted"].strings()
            caps.ambient = try c["ambient"].strings()
            proc.capabilities = caps
        }
        proc.oomScoreAdj = try p["oomScoreAdj"].int64()
        return proc
    }
}

/// RLIMIT_* names from the runtime spec to Linux resource numbers.
public enum Rlimits {
    public static let table: [String: Int32] = [
        "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
        "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
        "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
        "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
    ]
    public static func resource(_ name: String) -> Int32? { table[name] }
}
