import XCTest
@testable import VMM

/// Several vCPUs, one thread each, through the real /dev/kvm: the other vCPUs wait for INIT/SIPI
/// in the in-kernel LAPIC, whichever vCPU ends the VM decides `run`'s result, and `run` always
/// joins every vCPU thread. (Skipped with the reason when /dev/kvm cannot be opened.)
final class MultiVcpuTests: XCTestCase {
    override class func tearDown() {
        GuestBuilder.cleanUp()
        super.tearDown()
    }

    func makeVM(vcpus: Int) throws -> MicroVM {
        let kvm: Kvm
        do { kvm = try Kvm() } catch { throw XCTSkip("/dev/kvm unusable: \(error)") }
        var options = MicroVM.Options()
        options.memorySize = 4 << 20
        options.vcpuCount = vcpus
        return try MicroVM(options: options, kvm: kvm)
    }

    /// Real-mode code for vCPU 1 at 0x8000 (SIPI vector 8): `mov al, 42; out 0xf4, al; jmp $`.
    static let apTrampoline: [UInt8] = [0xb0, 0x2a, 0xe6, 0xf4, 0xeb, 0xfe]

    /// vCPU 0 sends INIT and SIPI (vector 8) to APIC id 1 through its LAPIC's ICR, then spins.
    static let startAP = #"""
    #define ICR_LO 0xfee00300UL
    #define ICR_HI 0xfee00310UL
    int main(void) {
        mmio_write(ICR_HI, 1u << 24); mmio_write(ICR_LO, 0x4500);   /* INIT, assert */
        for (volatile int i = 0; i < 100000; i++) {}
        mmio_write(ICR_HI, 1u << 24); mmio_write(ICR_LO, 0x4608);   /* STARTUP, vector 8 */
        for (volatile int i = 0; i < 100000; i++) {}
        mmio_write(ICR_HI, 1u << 24); mmio_write(ICR_LO, 0x4608);   /* and again, as Linux does */
        for (;;) { __asm__ volatile("pause"); }
    }
    """#

    func testEachVCPUHasItsAPICIdAndTheTopology() throws {
        let vm = try makeVM(vcpus: 3)
        XCTAssertEqual(vm.vcpus.map(\.id), [0, 1, 2])
        XCTAssertTrue(vm.vcpu === vm.vcpus[0])
        XCTAssertThrowsError(try makeVM(vcpus: 0))
        XCTAssertThrowsError(try makeVM(vcpus: 255))
        var options = MicroVM.Options()
        options.vcpuCount = 2
        options.irqchip = false
        XCTAssertThrowsError(try MicroVM(options: options)) { e in
            XCTAssertTrue("\(e)".contains("irqchip"), "\(e)")
        }
    }

    func testTheBootVCPUEndsTheVMAndTheWaitingOnesAreJoined() throws {
        let vm = try makeVM(vcpus: 3)
        try vm.load(try GuestBuilder.build("hello", SimpleGuests.hello))
        try vm.enterLongMode()
        let start = Clock.monotonic()
        let stop = try vm.run(timeoutNanoseconds: 5_000_000_000)
        XCTAssertTrue(stop.isClean, "\(stop)")
        XCTAssertEqual(vm.serial.outputString, "hello\n")
        // vCPUs 1 and 2 sat in KVM_RUN waiting for a SIPI; the kick must have ended them.
        XCTAssertLessThan(Clock.monotonic() - start, 3_000_000_000)
        XCTAssertEqual(vm.kicker.threads, [0, 0, 0], "every vCPU thread left its loop")
    }

    func testAVCPUStartedByINITAndSIPIEndsTheVM() throws {
        let vm = try makeVM(vcpus: 2)
        try vm.load(try GuestBuilder.build("start-ap", Self.startAP))
        try vm.memory.write(0x8000, Self.apTrampoline)
        try vm.enterLongMode()
        let stop = try vm.run(timeoutNanoseconds: 10_000_000_000)
        // Written by vCPU 1 (vCPU 0 only spins): the stop came from the other thread.
        guard case .debugExit(42) = stop else {
            return XCTFail("\(stop); unclaimed MMIO \(vm.mmio.unclaimedAccesses); vCPU 1 \((try? vm.vcpus[1].multiprocessingState()) ?? "?"): \((try? VcpuSnapshot(vm.vcpus[1]))?.description ?? "?")")
        }
    }

    func testAnotherThreadStopsEveryVCPU() throws {
        let vm = try makeVM(vcpus: 2)
        try vm.load(try GuestBuilder.build("spin", SimpleGuests.spin))
        try vm.enterLongMode()
        let kicker = vm.kicker
        let stopper = Thread {
            usleep(50_000)
            kicker.requestStop()
        }
        stopper.start()
        let start = Clock.monotonic()
        guard case .stopped = try vm.run(timeoutNanoseconds: 10_000_000_000) else { return XCTFail("not stopped") }
        XCTAssertLessThan(Clock.monotonic() - start, 2_000_000_000)
        guard case .stopped = try vm.run(timeoutNanoseconds: 10_000_000_000) else { return XCTFail("stop is not final") }
    }

    func testATimeoutOnTheBootVCPUEndsTheOthers() throws {
        let vm = try makeVM(vcpus: 2)
        try vm.load(try GuestBuilder.build("spin", SimpleGuests.spin))
        try vm.enterLongMode()
        guard case .timeout = try vm.run(timeoutNanoseconds: 200_000_000) else { return XCTFail("no timeout") }
        // A second run of the same VM works (no kick left over from the first).
        guard case .timeout = try vm.run(timeoutNanoseconds: 200_000_000) else { return XCTFail("no timeout") }
    }
}
