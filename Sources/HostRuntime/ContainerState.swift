import OCI

/// What the state directory records about one container. Printed by `state` in runc's shape.
public struct ContainerState: Sendable {
    public enum Status: String, Sendable { case creating, created, running, paused, stopped }

    public var id: String
    public var bundle: String
    public var rootfs: String
    public var created: String
    /// The keeper's host PID (what --pid-file receives) and its start time, to spot PID reuse.
    public var pid: Int32
    public var pidStartTime: UInt64
    public var status: Status
    public var exitStatus: Int32?
    public var annotations: [String: String]
    public var owner: String

    public init(id: String, bundle: String, rootfs: String, annotations: [String: String]) {
        self.id = id; self.bundle = bundle; self.rootfs = rootfs; self.annotations = annotations
        created = Timestamp.now(); pid = 0; pidStartTime = 0; status = .creating; exitStatus = nil; owner = ""
    }

    /// runc's `state` document.
    public func runcJSON(status: Status) -> JSON {
        .object([
            ("ociVersion", JSON("1.0.2")), ("id", JSON(id)),
            ("pid", JSON(Int(status == .stopped ? 0 : pid))), ("status", JSON(status.rawValue)),
            ("bundle", JSON(bundle)), ("rootfs", JSON(rootfs)), ("created", JSON(created)),
            ("owner", JSON(owner)), ("annotations", JSON(annotations)),
        ])
    }

    /// The stored form: runc's fields plus ours.
    func stored() -> JSON {
        var pairs = runcJSON(status: status).objectPairs!
        pairs.removeAll { $0.0 == "pid" }
        pairs.append(("pid", JSON(Int(pid))))
        pairs.append(("pidStartTime", JSON(pidStartTime)))
        if let e = exitStatus { pairs.append(("exitStatus", JSON(Int(e)))) }
        return .object(pairs)
    }

    static func load(_ json: JSON) -> ContainerState? {
        guard let id = json["id"]?.string, let bundle = json["bundle"]?.string,
              let status = json["status"]?.string.flatMap(Status.init(rawValue:)) else { return nil }
        var annotations: [String: String] = [:]
        for (k, v) in json["annotations"]?.objectPairs ?? [] { annotations[k] = v.string ?? "" }
        var s = ContainerState(id: id, bundle: bundle, rootfs: json["rootfs"]?.string ?? "", annotations: annotations)
        s.created = json["created"]?.string ?? ""
        guard let pid = Int32(exactly: json["pid"]?.int64 ?? 0) else { return nil }
        s.pid = pid
        s.pidStartTime = json["pidStartTime"]?.uint64 ?? 0
        s.status = status
        if let e = json["exitStatus"]?.int64 {
            guard let v = Int32(exactly: e) else { return nil }
            s.exitStatus = v
        }
        s.owner = json["owner"]?.string ?? ""
        return s
    }
}
