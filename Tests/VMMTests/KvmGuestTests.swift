import XCTest
@testable import VMM

/// Tiny guests run through the real /dev/kvm (skipped with the reason when it cannot be opened).
final class KvmGuestTests: XCTestCase {
    override class func tearDown() {
        GuestBuilder.cleanUp()
        super.tearDown()
    }

    func makeVM(memory: Int = 4 << 20) throws -> MicroVM {
        let kvm: Kvm
        do { kvm = try Kvm() } catch { throw XCTSkip("/dev/kvm unusable: \(error)") }
        var options = MicroVM.Options()
        options.memorySize = memory
        return try MicroVM(options: options, kvm: kvm)
    }

    func boot(_ name: String, _ source: String, vm: MicroVM? = nil, timeoutMs: UInt64 = 5000) throws -> (MicroVM, VMStop) {
        let program = try GuestBuilder.build(name, source)
        let vm = try vm ?? makeVM()
        try vm.load(program)
        try vm.enterLongMode()
        let stop = try vm.run(timeoutNanoseconds: timeoutMs * 1_000_000)
        return (vm, stop)
    }

    func testHelloOnSerial() throws {
        let (vm, stop) = try boot("hello", SimpleGuests.hello)
        XCTAssertTrue(stop.isClean, "\(stop)")
        XCTAssertEqual(vm.serial.outputString, "hello\n")
    }

    func testStringIOOnSerial() throws {
        let (vm, stop) = try boot("stringio", SimpleGuests.stringIO)
        XCTAssertTrue(stop.isClean, "\(stop)")
        XCTAssertEqual(vm.serial.outputString, "string io\n")
    }

    func testReadsVirtioMMIOIdentification() throws {
        let vm = try makeVM()
        try vm.addVirtio(VirtioConsole())
        let (_, stop) = try boot("mmioids", SimpleGuests.mmioIDs, vm: vm)
        XCTAssertTrue(stop.isClean, "\(stop)")
        XCTAssertEqual(vm.serial.outputString, "magic=74726976 version=2 device=3 vendor=554d4551 empty=ffffffff\n")
    }

    func testConsoleRoundTripBothWays() throws {
        let vm = try makeVM()
        let console = VirtioConsole()
        var received: [[UInt8]] = []
        console.onOutput = { received.append($0) }
        console.send(Array("pong".utf8))
        try vm.addVirtio(console)
        let (_, stop) = try boot("console", ConsoleGuest.roundTrip, vm: vm)
        XCTAssertTrue(stop.isClean, "\(stop)\nserial: \(vm.serial.outputString)")
        XCTAssertEqual(received.map { String(decoding: $0, as: UTF8.self) }, ["ping", "got:pong"])
        XCTAssertEqual(vm.serial.outputString, "console ok\n")
        XCTAssertTrue(console.pendingInput.isEmpty)
        XCTAssertEqual(console.rejected, [])
    }

    func testVirtioFSRoundTripFromGuest() throws {
        let tree = try TempTree()
        tree.mkdir("root")
        tree.write("root/hello.txt", "hello from the host\n")
        let vm = try makeVM()
        let fs = try VirtioFS(tag: "kata", server: try FuseServer(root: tree.path("root")))
        try vm.addVirtio(fs)
        let (_, stop) = try boot("virtiofs", FsGuest.program, vm: vm)
        XCTAssertTrue(stop.isClean, "\(stop)\nserial: \(vm.serial.outputString)")
        XCTAssertEqual(vm.serial.outputString, "read: hello from the host\ndotdot refused\nfs ok\n")
        XCTAssertEqual(fs.requestsServed, 7)
        XCTAssertEqual(fs.rejected, [])
        XCTAssertEqual(fs.server.handleCount, 0)
        XCTAssertEqual(fs.server.nodeCount, 1, "the guest forgot its one lookup")
    }

    func testHostileChainsFromGuestAreRejectedAndDeviceKeepsWorking() throws {
        let vm = try makeVM()
        let console = VirtioConsole()
        var received: [String] = []
        console.onOutput = { received.append(String(decoding: $0, as: UTF8.self)) }
        try vm.addVirtio(console)
        let (_, stop) = try boot("hostile", ConsoleGuest.hostile, vm: vm)
        XCTAssertTrue(stop.isClean, "\(stop)")
        XCTAssertEqual(vm.serial.outputString, "hostile ok\n")
        XCTAssertEqual(received, ["still alive"])
        XCTAssertEqual(console.rejected, [
            .loop(at: 3), .bufferOutsideMemory(address: 0x4000_0000, length: 16),
            .wrongDirection(expectedWritable: false), .nextOutOfRange(200),
        ])
    }

    func testIOEventFDTakesMatchingNotifyWithoutAnExit() throws {
        let vm = try makeVM()
        let console = VirtioConsole()
        let transport = try vm.addVirtio(console)
        let efd = try EventFD()
        try vm.vm.assignIOEventFD(efd.fd, address: 0xd000_0050, value: 1)
        let (_, stop) = try boot("notify", SimpleGuests.notify, vm: vm)
        XCTAssertTrue(stop.isClean, "\(stop)")
        XCTAssertEqual(efd.take(), 1)                 // the write of 1 went to the eventfd
        XCTAssertFalse(transport.activated)        // and the write of 0 to the device, which ignored it
        XCTAssertEqual(vm.mmio.unclaimedAccesses, 0)
    }

    func testRebootThroughI8042EndsTheVM() throws {
        let (vm, stop) = try boot("reboot", SimpleGuests.reboot)
        guard case .reset = stop else { return XCTFail("\(stop)") }
        XCTAssertTrue(vm.i8042.resetRequested)
        XCTAssertEqual(vm.serial.outputString, "rebooting\n")
    }

    func testSpinningGuestTimesOut() throws {
        let start = Clock.monotonic()
        let (_, stop) = try boot("spin", SimpleGuests.spin, timeoutMs: 200)
        let elapsed = Clock.monotonic() - start
        guard case .timeout(let regs) = stop else { return XCTFail("\(stop)") }
        XCTAssertNotNil(regs)
        XCTAssertLessThan(elapsed, 3_000_000_000)
    }

    func testAnotherThreadCanStopARunningGuest() throws {
        let program = try GuestBuilder.build("spin", SimpleGuests.spin)
        let vm = try makeVM()
        try vm.load(program)
        try vm.enterLongMode()
        let kicker = vm.kicker
        let stopper = Thread {
            usleep(50_000)
            kicker.requestStop()
        }
        stopper.start()
        let start = Clock.monotonic()
        let stop = try vm.run(timeoutNanoseconds: 10_000_000_000)
        let elapsed = Clock.monotonic() - start
        guard case .stopped = stop else { return XCTFail("\(stop)") }
        XCTAssertLessThan(elapsed, 2_000_000_000)
        guard case .stopped = try vm.run(timeoutNanoseconds: 10_000_000_000) else { return XCTFail("stop is not final") }
    }

    func testPageFaultWithoutIDTIsReportedAsShutdownWithRegisters() throws {
        let (_, stop) = try boot("pagefault", SimpleGuests.pageFault)
        guard case .shutdown(let snap) = stop else { return XCTFail("\(stop)") }
        let text = stop.description
        XCTAssertTrue(text.contains("triple fault"), text)
        XCTAssertTrue(text.contains("rip="), text)
        if let snap { XCTAssertGreaterThanOrEqual(snap.rip, 0x100000) }
    }

    func testFPUInstructionOnPVMIsExplained() throws {
        let (vm, stop) = try boot("fpu", SimpleGuests.fpu)
        if !Kvm.isPVM {
            XCTAssertTrue(stop.isClean, "\(stop)")
            XCTAssertEqual(vm.serial.outputString, "fpu ok\n")
            return
        }
        guard case .internalError(let report) = stop else { return XCTFail("\(stop)") }
        XCTAssertTrue(report.isEmulationFailure)
        XCTAssertTrue(report.description.contains("PVM"), report.description)
        XCTAssertEqual(Array(report.instruction.prefix(2)), [0xdb, 0xe2], report.description)   // fnclex
        XCTAssertEqual(report.snapshot?.rip, 0x100009)
        print(report)
    }

    func testMissingCapabilityIsNamed() throws {
        let kvm: Kvm
        do { kvm = try Kvm() } catch { throw XCTSkip("/dev/kvm unusable: \(error)") }
        XCTAssertEqual(kvm.missing(), [], "this host lacks capabilities the VMM needs")
        let bogus = KvmCapability(name: "KVM_CAP_BOGUS_FOR_TEST", number: 100_000)
        XCTAssertThrowsError(try kvm.requireCapabilities([.userMemory, bogus])) { error in
            XCTAssertEqual(error as? KvmError, .missingCapability("KVM_CAP_BOGUS_FOR_TEST"))
            XCTAssertTrue("\(error)".contains("KVM_CAP_BOGUS_FOR_TEST"))
        }
    }

    func testTinyGuestProbe() throws {
        do { _ = try Kvm() } catch { throw XCTSkip("/dev/kvm unusable: \(error)") }
        let r = TinyGuestProbe.run()
        XCTAssertTrue(r.ran, r.text + "\n" + r.json)
        XCTAssertEqual(r.serialOutput, "ok\n")
        XCTAssertGreaterThan(r.processRSSBytes, 0)
        XCTAssertTrue(r.json.hasPrefix("{\"ran\":true"), r.json)
        print(r.text)
        print(r.json)
    }
}
