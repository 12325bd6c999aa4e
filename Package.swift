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
        .target(name: "OCI", dependencies: ["CYajl", "CShims"]),
        .target(name: "Agent", dependencies: ["CShims"]),
        // rtnetlink requests and replies: links, addresses, routes, tc (host taps, guest eth0).
        .target(name: "Netlink", dependencies: ["CShims"]),
        .target(name: "Hypervisor", dependencies: ["Agent", "CShims"]),
        // linux/kvm.h and ioctl numbers for the built-in VMM.
        .target(name: "CKVM", path: "Sources/CKVM"),
        // The built-in VMM: /dev/kvm, guest memory, x86_64 boot, devices.
        .target(name: "VMM", dependencies: ["CKVM", "Agent", "Hypervisor", "OCI"]),
        .target(name: "HostRuntime", dependencies: ["OCI", "Agent", "Hypervisor", "VMM", "CShims", "Netlink"]),
        .target(name: "Guest", dependencies: ["OCI", "Agent", "CShims", "Netlink"]),
        .target(name: "CLI", dependencies: ["HostRuntime", "Guest", "OCI", "VMM"]),
        .executableTarget(name: "kata-runtime", dependencies: ["CLI", "Guest"]),
        // Temp directories and files for the test suites (a library, so tests share it).
        .target(name: "TestSupport", dependencies: ["Agent", "CShims"], path: "Tests/TestSupport"),
        .testTarget(name: "OCITests", dependencies: ["OCI"]),
        .testTarget(name: "AgentTests", dependencies: ["Agent"]),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink"]),
        .testTarget(name: "HostRuntimeTests", dependencies: ["HostRuntime", "CLI", "TestSupport"]),
        .testTarget(name: "GuestTests", dependencies: ["Guest", "OCI", "TestSupport", "Netlink"]),
        .testTarget(name: "EndToEndTests", dependencies: ["OCI", "CShims"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),  // drives processes from threads
        .testTarget(name: "VMMTests", dependencies: ["VMM"]),
    ]
)
