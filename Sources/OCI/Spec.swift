/// The parts of an OCI runtime-spec config.json that kata-runtime acts on.
/// The whole document is kept in `raw` so the guest can read fields added later.
public struct Spec: Sendable {
    public var ociVersion: String
    public var process: Process?
    public var root: Root?
    public var hostname: String?
    public var domainname: String?
    public var mounts: [Mount]
    public var annotations: [String: String]
    public var hooks: Hooks
    public var linux: Linux
    public var raw: JSON

    public struct Root: Sendable { public var path: String; public var readonly: Bool }

    public struct Mount: Sendable, Equatable {
        public var destination: String
        public var type: String?
        public var source: String?
        public var options: [String]
        public init(destination: String, type: String?, source: String?, options: [String]) {
            self.destination = destination; self.type = type; self.source = source; self.options = options
        }
        public var isBind: Bool { type == "bind" || options.contains("bind") || options.contains("rbind") }
    }

    public struct Hook: Sendable {
        public var path: String
        public var args: [String]
        public var env: [String]
        public var timeout: Int?
    }

    public struct Hooks: Sendable {
        public var prestart: [Hook] = []
        public var createRuntime: [Hook] = []
        public var createContainer: [Hook] = []
        public var startContainer: [Hook] = []
        public var poststart: [Hook] = []
        public var poststop: [Hook] = []
        public init() {}
    }

    public struct Namespace: Sendable, Equatable { public var type: String; public var path: String? }

    public struct Device: Sendable {
        public var path: String; public var type: String
        public var major: Int64; public var minor: Int64
        public var fileMode: UInt32?; public var uid: UInt32?; public var gid: UInt32?
    }

    public struct Linux: Sendable {
        public var namespaces: [Namespace] = []
        public var maskedPaths: [String] = []
        public var readonlyPaths: [String] = []
        public var devices: [Device] = []
        public var sysctl: [String: String] = [:]
        public var rootfsPropagation: String?
        public var resources: JSON?
        public var seccomp: Seccomp?
        public var cgroupsPath: String?
        public func has(_ ns: String) -> Bool { namespaces.contains { $0.type == ns } }
    }
}

/// What a process runs as and with: config.json's `process`, also exec's process.json.
public struct Process: Sendable {
    public var terminal: Bool
    public var consoleSize: (height: UInt32, width: UInt32)?
    public var uid: UInt32
    public var gid: UInt32
    public var umask: UInt32?
    public var additionalGids: [UInt32]
    public var args: [String]
    public var env: [String]
    public var cwd: String
    public var rlimits: [Rlimit]
    public var noNewPrivileges: Bool
    public var capabilities: Capabilities?
    public var oomScoreAdj: Int64?

    /// process.capabilities: capability names (CAP_*) per set, as given.
    public struct Capabilities: Sendable, Equatable {
        public var bounding: [String] = []
        public var effective: [String] = []
        public var inheritable: [String] = []
        public var permitted: [String] = []
        public var ambient: [String] = []
        public init() {}
        /// Every name in any set, for checking them once.
        public var allNames: [String] { bounding + effective + inheritable + permitted + ambient }
    }

    public struct Rlimit: Sendable, Equatable { public var type: String; public var hard: UInt64; public var soft: UInt64 }

    public init(args: [String], env: [String] = [], cwd: String = "/") {
        terminal = false; consoleSize = nil; uid = 0; gid = 0; umask = nil; additionalGids = []
        self.args = args; self.env = env; self.cwd = cwd; rlimits = []; noNewPrivileges = false
        capabilities = nil; oomScoreAdj = nil
    }
}
