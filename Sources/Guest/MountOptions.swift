#if canImport(Glibc)
import Glibc
#endif

/// config.json mount options split the way mount(2) wants them.
public struct MountOptions: Equatable {
    public var flags: UInt = 0
    public var clearFlags: UInt = 0
    public var propagation: [UInt] = []
    public var data: [String] = []
    public var bind = false
    public var recursive = false

    static let setting: [String: UInt] = [
        "ro": (MS_RDONLY), "nosuid": (MS_NOSUID), "nodev": (MS_NODEV), "noexec": (MS_NOEXEC),
        "sync": (MS_SYNCHRONOUS), "remount": (MS_REMOUNT), "mand": (MS_MANDLOCK),
        "dirsync": (MS_DIRSYNC), "noatime": (MS_NOATIME), "nodiratime": (MS_NODIRATIME),
        "relatime": (MS_RELATIME), "strictatime": (MS_STRICTATIME),
    ]
    static let clearing: [String: UInt] = [
        "rw": (MS_RDONLY), "suid": (MS_NOSUID), "dev": (MS_NODEV), "exec": (MS_NOEXEC),
        "async": (MS_SYNCHRONOUS), "nomand": (MS_MANDLOCK), "atime": (MS_NOATIME),
        "diratime": (MS_NODIRATIME), "norelatime": (MS_RELATIME), "nostrictatime": (MS_STRICTATIME),
    ]
    static let propagations: [String: UInt] = [
        "private": (MS_PRIVATE), "rprivate": (MS_PRIVATE | MS_REC), "shared": (MS_SHARED),
        "rshared": (MS_SHARED | MS_REC), "slave": (MS_SLAVE), "rslave": (MS_SLAVE | MS_REC),
        "unbindable": (MS_UNBINDABLE), "runbindable": (MS_UNBINDABLE | MS_REC),
    ]

    public init(_ options: [String]) {
        for o in options {
            if let f = Self.setting[o] { flags |= f; clearFlags &= ~f }
            else if let f = Self.clearing[o] { flags &= ~f; clearFlags |= f }
            else if let p = Self.propagations[o] { propagation.append(p) }
            else if o == "bind" { bind = true }
            else if o == "rbind" { bind = true; recursive = true }
            else if o == "tmpcopyup" || o.hasPrefix("idmap") || o == "ridmap" { continue }  // not supported yet
            else { data.append(o) }
        }
    }

    public var dataString: String { data.joined(separator: ",") }
}
