#if canImport(Glibc)
import Glibc
#endif

/// What every backend needs to boot one container's VM.
public struct VMConfig: Sendable {
    public var kernel: String
    public var initrd: String
    public var vcpus: Int
    public var memoryMiB: Int
    public var kernelParams: [String]
    /// Sockets and logs go here; it is the backend processes' working directory.
    public var stateDir: String
    /// The host directory the guest mounts over virtio-fs with tag `shareTag`.
    public var sharedDir: String
    /// Bind mounts into `sharedDir`, made in a private mount namespace so that they
    /// vanish with the VM instead of leaking into the host.
    public var binds: [(source: String, target: String)]
    public var bootTimeoutSeconds: Int
    public var debug: Bool
    /// virtio-net devices, each backed by an open tap (the backend keeps the fd for the VM).
    public var netDevices: [NetDevice] = []

    public static let shareTag = "kataShared"

    public init(kernel: String, initrd: String, vcpus: Int, memoryMiB: Int, kernelParams: [String],
                stateDir: String, sharedDir: String, binds: [(source: String, target: String)],
                bootTimeoutSeconds: Int, debug: Bool) {
        self.kernel = kernel; self.initrd = initrd; self.vcpus = vcpus; self.memoryMiB = memoryMiB
        self.kernelParams = kernelParams; self.stateDir = stateDir; self.sharedDir = sharedDir
        self.binds = binds; self.bootTimeoutSeconds = bootTimeoutSeconds; self.debug = debug
    }
}

/// A guest network device on a tap the keeper created in the container's network namespace.
public struct NetDevice: Sendable, Equatable {
    public var tapFD: Int32
    /// The guest's MAC: the container interface's own, so the network sees the same host.
    public var mac: [UInt8]
    /// The interface's MTU, offered to the guest by the built-in VMM (0: not known).
    public var mtu: UInt32
    public init(tapFD: Int32, mac: [UInt8], mtu: UInt32 = 0) { self.tapFD = tapFD; self.mac = mac; self.mtu = mtu }
    public var macText: String { mac.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":") }
}

public struct VMError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A booted (or booting) VM. The agent channel is a byte stream to the guest's
/// "agent" port; the caller speaks the agent protocol over it.
public protocol VirtualMachine: AnyObject {
    /// Starts the VM and returns the host end of the agent channel once connected.
    func start() throws(VMError) -> Int32
    /// Stops everything the backend started; safe to call twice.
    func stop()
    /// Host processes the backend owns (for reaping); the VM is gone if one exits.
    var processes: [pid_t] { get }
    /// The last lines of the guest console, for error messages.
    func consoleTail() -> String
}
