#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import VMM

/// Boots the project's guest kernel through the real /dev/kvm until the "Linux version" banner
/// appears on the serial console, then stops the VM. On this machine's PVM /dev/kvm a standard
/// kernel is emulated instruction by instruction (docs/vmm.md), so this takes seconds; on VT-x /
/// AMD-V it takes milliseconds. Skipped with the reason when /dev/kvm or the kernel is missing.
final class LinuxEarlyBootTests: XCTestCase {
    static let share = "/usr/share/kata-runtime"
    static let banner = Array("Linux version".utf8)

    func kernel(_ name: String) throws -> String {
        let path = String(cString: getenv("KATA_VMM_KERNEL_DIR") ?? strdup(LinuxEarlyBootTests.share)) + "/" + name
        guard access(path, R_OK) == 0 else {
            throw XCTSkip("\(path) is missing (build it with scripts/guest/build-kernel.sh)")
        }
        return path
    }

    func makeVM() throws -> MicroVM {
        let kvm: Kvm
        do { kvm = try Kvm() } catch { throw XCTSkip("/dev/kvm unusable: \(error)") }
        var options = MicroVM.Options()
        options.memorySize = 256 << 20
        options.irqchip = true
        options.pit = true
        // PVM emulates a standard kernel in KVM's instruction emulator: keep the kernel away from
        // instructions it cannot emulate (platform.md). Nothing is hidden on VT-x/AMD-V.
        if Kvm.isPVM { options.hiddenCPUFeatures = CPUFeature.unavailableToEmulator }
        return try MicroVM(options: options, kvm: kvm)
    }

    /// Runs until the banner shows up on the serial port (or `seconds` pass).
    func bootToBanner(_ vm: MicroVM, seconds: UInt64) throws -> (VMStop, bannerAfterNs: UInt64?) {
        var window: [UInt8] = []
        var bannerAt: UInt64?
        vm.serial.onOutput = { byte in
            guard bannerAt == nil else { return }
            window.append(byte)
            if window.count > LinuxEarlyBootTests.banner.count { window.removeFirst() }
            if window == LinuxEarlyBootTests.banner {
                bannerAt = Clock.monotonic()
                vm.kicker.requestStop()
            }
        }
        let start = Clock.monotonic()
        let stop = try vm.run(timeoutNanoseconds: seconds * 1_000_000_000)
        return (stop, bannerAt.map { $0 - start })
    }

    /// earlycon prints from early in setup_arch (the kernel has no EARLY_PRINTK); the TSC
    /// frequency is given so no calibration loop runs.
    static let commandLine = "console=ttyS0 earlycon=uart8250,io,0x3f8 tsc_early_khz=2000000 panic=-1"

    func boot(_ image: String, _ proto: BootProtocol?, initrd: Bool, seconds: UInt64 = 120,
              file: StaticString = #filePath, line: UInt = #line) throws -> (MicroVM, LinuxBootLayout) {
        let path = try kernel(image)
        let vm = try makeVM()
        var config = LinuxBootConfig(kernelPath: path, commandLine: LinuxEarlyBootTests.commandLine, bootProtocol: proto)
        let initrdPath = LinuxEarlyBootTests.share + "/kata-initrd.img"
        if initrd, access(initrdPath, R_OK) == 0 { config.initrdPath = initrdPath }
        let layout = try vm.loadLinux(config)
        let (stop, after) = try bootToBanner(vm, seconds: seconds)
        let out = vm.serial.outputString
        print("\(layout); loaded in \(layout.loadNanoseconds / 1000) us; \"Linux version\" after "
              + (after.map { "\($0 / 1_000_000) ms" } ?? "never") + ", \(vm.exitCount) exits")
        XCTAssertNotNil(after, "no banner; stop: \(stop)\nserial: \(out)", file: file, line: line)
        guard case .stopped = stop else { XCTFail("\(stop)", file: file, line: line); return (vm, layout) }
        XCTAssertTrue(out.hasPrefix("[    0.000000] Linux version") || out.contains("Linux version"), out, file: file, line: line)
        return (vm, layout)
    }

    /// The product path: vmlinux through its PVH entry, with the initramfs as module 0.
    func testLinuxEarlyBootPVH() throws {
        let (vm, layout) = try boot("vmlinux", nil, initrd: true)
        XCTAssertEqual(layout.bootProtocol, .pvh)
        XCTAssertEqual(layout.entry, 0x100_0000)
        XCTAssertEqual(try LocalAPIC.read(vm.vcpu).deliveryMode(LocalAPIC.lvtLINT0), LocalAPIC.deliveryExtINT)
        XCTAssertEqual(try LocalAPIC.read(vm.vcpu).deliveryMode(LocalAPIC.lvtLINT1), LocalAPIC.deliveryNMI)
        XCTAssertEqual(try BootMSRs.read(BootMSRs.mtrrDefType, from: vm.vcpu), 0x806)
    }

    /// The same vmlinux entered at startup_64 with a zero page (the 64-bit boot protocol).
    func testLinuxEarlyBootVmlinux64BitProtocol() throws {
        let (_, layout) = try boot("vmlinux", .linux64, initrd: false)
        XCTAssertEqual(layout.bootProtocol, .linux64)
        XCTAssertEqual(layout.bootInfo, X86Layout.zeroPage)
    }

    /// bzImage through the 64-bit protocol. Its LZ4 decompressor runs emulated on PVM (~30 s
    /// here), so this one runs only with KATA_VMM_SLOW_TESTS=1 (or on hardware virtualization).
    func testLinuxEarlyBootBzImage() throws {
        if Kvm.isPVM, getenv("KATA_VMM_SLOW_TESTS") == nil {
            throw XCTSkip("bzImage decompression is emulated on this PVM host (~30 s); set KATA_VMM_SLOW_TESTS=1")
        }
        let (_, layout) = try boot("bzImage", nil, initrd: true)
        XCTAssertEqual(layout.kernelFormat, "bzImage")
    }
}
