// swift-tools-version:6.0
import PackageDescription

// One binary, three roles: CLI, host-side keeper, and guest PID 1.
// No Foundation anywhere: the binary is the guest's /init, so its size is boot time.
let package = Package(
    name: "kata-runtime",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "kata-runtime", targets: ["kata-runtime"]),
    ],
    targets: [
        // C shims: syscalls Glibc does not wrap, variadic calls Swift cannot make.
        .target(name: "CShims", path: "Sources/CShims"),
        // yajl through pkg-config; the static archive is libyajl_s.a.
        .systemLibrary(name: "CYajl", path: "Sources/CYajl",
                       providers: [.apt(["libyajl-dev"])]),
        // libseccomp and libcap through pkg-config; static libseccomp.a and libcap.a link into
        // the static binary (the guest's /init applies seccomp filters and capabilities).
        .systemLibrary(name: "CSeccomp", path: "Sources/CSeccomp", pkgConfig: "libseccomp",
                       providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CLibcap", path: "Sources/CLibcap", pkgConfig: "libcap",
                       providers: [.apt(["libcap-dev"])]),
        .target(name: "OCI", dependencies: ["CYajl", "CShims"]),
        // linux.seccomp to a BPF program (libseccomp + runc's -ENOSYS stub): compiled by the
        // keeper on the host, loaded by the guest.
        .target(name: "SyscallFilter", dependencies: ["OCI", "CSeccomp", "CShims"]),
        .target(name: "Agent", dependencies: ["CShims"]),
        // rtnetlink requests and replies: links, addresses, routes, tc (host taps, guest eth0).
        .target(name: "Netlink", dependencies: ["CShims"]),
        .target(name: "Hypervisor", dependencies: ["Agent", "CShims"]),
        // linux/kvm.h and ioctl numbers for the built-in VMM.
        .target(name: "CKVM", path: "Sources/CKVM"),
        // The built-in VMM: /dev/kvm, guest memory, x86_64 boot, devices.
        .target(name: "VMM", dependencies: ["CKVM", "Agent", "Hypervisor", "OCI"]),
        .target(name: "HostRuntime", dependencies: ["OCI", "Agent", "Hypervisor", "VMM", "CShims", "SyscallFilter", "Netlink"]),
        .target(name: "Guest", dependencies: ["OCI", "Agent", "CShims", "SyscallFilter", "CLibcap", "Netlink"]),
        .target(name: "CLI", dependencies: ["HostRuntime", "Guest", "OCI", "VMM", "SyscallFilter"]),
        .executableTarget(name: "kata-runtime", dependencies: ["CLI", "Guest"]),
        // Temp directories and files for the test suites (a library, so tests share it).
        .target(name: "TestSupport", dependencies: ["Agent", "CShims", "CSeccomp"], path: "Tests/TestSupport"),
        .testTarget(name: "OCITests", dependencies: ["OCI"]),
        .testTarget(name: "AgentTests", dependencies: ["Agent"]),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink"]),
        .testTarget(name: "HostRuntimeTests", dependencies: ["HostRuntime", "CLI", "TestSupport"]),
        .testTarget(name: "GuestTests", dependencies: ["Guest", "OCI", "TestSupport", "SyscallFilter", "Netlink"]),
        .testTarget(name: "EndToEndTests", dependencies: ["OCI", "CShims", "TestSupport"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),  // drives processes from threads
        .testTarget(name: "VMMTests", dependencies: ["VMM"]),
    ]
)
