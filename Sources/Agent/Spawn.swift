#if canImport(Glibc)
import Glibc
#endif
import CShims

/// fork + exec through the C spawner (CShims kata_spawn), which reports exec failures
/// synchronously, so a failed spawn leaves no process behind.
public struct Spawn {
    public var args: [String]
    /// The executable; args[0] when nil (hooks run `path` with their own argv[0]).
    public var path: String? = nil
    /// nil: inherit the environment.
    public var env: [String]? = nil
    /// stdin, stdout, stderr of the child; -1 gives it /dev/null.
    public var stdio: (Int32, Int32, Int32) = (0, 1, 2)
    /// Further fds the child keeps under the same numbers.
    public var keep: [Int32] = []
    public var setsid = false
    /// Sent to the child when its parent dies; 0: none.
    public var pdeathsig: Int32 = 0
    public var cwd: String? = nil
    /// Bind mounts made in a private mount namespace before exec (nil: no new namespace).
    public var privateBinds: [(source: String, target: String)]? = nil

    public init(_ args: [String]) { self.args = args }

    /// The child's PID, or -errno.
    public func run() -> pid_t {
        let argv = args.map { strdup($0) } + [nil]
        let exe = strdup(path ?? args[0])
        let envp = env.map { $0.map { strdup($0) } + [nil] }
        let src = (privateBinds ?? []).map { strdup($0.source) }
        let dst = (privateBinds ?? []).map { strdup($0.target) }
        let dir = cwd.map { strdup($0) }
        defer { for p in argv + (envp ?? []) + src + dst + [dir ?? nil, exe] { free(p) } }
        var keepFDs = keep
        return keepFDs.withUnsafeMutableBufferPointer { k in
            argv.withUnsafeBufferPointer { a in
                (envp ?? []).withUnsafeBufferPointer { e in
                    src.withUnsafeBufferPointer { s in
                        dst.withUnsafeBufferPointer { d in
                            var o = kata_spawn_opts()
                            o.path = UnsafePointer(exe!)
                            o.argv = UnsafePointer(a.baseAddress!)
                            o.envp = envp == nil ? nil : UnsafePointer(e.baseAddress!)
                            o.fds = stdio
                            o.keep_fds = UnsafePointer(k.baseAddress)
                            o.n_keep_fds = Int32(k.count)
                            o.setsid = setsid ? 1 : 0
                            o.pdeathsig = pdeathsig
                            o.new_mount_ns = privateBinds == nil ? 0 : 1
                            o.bind_src = UnsafeRawPointer(s.baseAddress).map { $0.assumingMemoryBound(to: UnsafePointer<CChar>?.self) }
                            o.bind_dst = UnsafeRawPointer(d.baseAddress).map { $0.assumingMemoryBound(to: UnsafePointer<CChar>?.self) }
                            o.n_binds = Int32(src.count)
                            o.cwd = UnsafePointer(dir ?? nil)
                            return kata_spawn(&o)
                        }
                    }
                }
            }
        }
    }
}
