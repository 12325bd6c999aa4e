/// clone(2) flags for the runtime spec's namespace names.
public enum Namespaces {
    public static let flags: [String: Int32] = [
        "mount": 0x0002_0000, "cgroup": 0x0200_0000, "uts": 0x0400_0000, "ipc": 0x0800_0000,
        "user": 0x1000_0000, "pid": 0x2000_0000, "network": 0x4000_0000,
    ]
    public static let newPID: Int32 = 0x2000_0000
    public static let newNS: Int32 = 0x0002_0000
}
