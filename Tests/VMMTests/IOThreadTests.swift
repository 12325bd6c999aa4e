#if canImport(Glibc)
import Glibc
#endif
import XCTest
import Synchronization
@testable import VMM

/// Device work off the vCPU thread: ioeventfd notifications served by the I/O thread, interrupts
/// through irqfd, host input fed from another thread while the vCPU runs.
final class IOThreadTests: XCTestCase {
    override class func tearDown() {
        GuestBuilder.cleanUp()
        super.tearDown()
    }

    func makeVM() throws -> MicroVM {
        let kvm: Kvm
        do { kvm = try Kvm() } catch { throw XCTSkip("/dev/kvm unusable: \(error)") }
        return try MicroVM(options: MicroVM.Options(), kvm: kvm)
    }

    /// Runs the vCPU on its own thread; returns a function that joins it and gives the stop.
    func runInBackground(_ vm: MicroVM, timeoutMs: UInt64 = 10_000) throws -> () -> VMStop? {
        final class Result: @unchecked Sendable { var stop: VMStop?; var thread: UInt = 0 }
        let r = Result()
        let t = try NativeThread(name: "test-vcpu") {
            r.thread = UInt(pthread_self())
            r.stop = try? vm.run(timeoutNanoseconds: timeoutMs * 1_000_000)
        }
        return { t.join(); return r.stop }
    }

    func testConsoleRoundTripDrivenByTheIOThread() throws {
        let program = try GuestBuilder.build("patient", ConsoleGuest.patientRoundTrip)
        let vm = try makeVM()
        let console = VirtioConsole()
        let transport = try vm.addVirtio(console)
        let received = Mutex<[String]>([])
        let outputThreads = Mutex<Set<UInt>>([])
        console.onOutput = { bytes in
            received.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
            outputThreads.withLock { _ = $0.insert(UInt(pthread_self())) }
        }
        let io = try vm.startIOThread()
        try vm.load(program)
        try vm.enterLongMode()
        let join = try runInBackground(vm)

        // The host answers only after the guest has spoken, while the vCPU is running.
        let deadline = Clock.monotonic() + 5_000_000_000
        while received.withLock({ $0.isEmpty }) && Clock.monotonic() < deadline { usleep(1000) }
        XCTAssertEqual(received.withLock { $0 }, ["ping"])
        transport.lock.withLock { console.send(Array("pong".utf8)) }
        let stop = join()

        XCTAssertEqual(stop.map { $0.isClean }, true, "\(String(describing: stop))\nserial: \(vm.serial.outputString)")
        XCTAssertEqual(received.withLock { $0 }, ["ping", "got:pong"])
        XCTAssertEqual(vm.serial.outputString, "console ok\n")
        transport.lock.withLock {
            XCTAssertEqual(transport.notifiesByExit, 0, "QueueNotify writes must go to the ioeventfds")
            XCTAssertGreaterThanOrEqual(transport.notifiesByEventFD, 3)
            XCTAssertGreaterThanOrEqual(transport.interruptsRaised, 2, "used buffers raise the irqfd")
        }
        let threads = outputThreads.withLock { $0 }
        XCTAssertEqual(threads.count, 1)
        XCTAssertFalse(threads.contains(UInt(pthread_self())))
        XCTAssertGreaterThan(io.wakeups.load(ordering: .relaxed), 0)
        vm.stopIOThread()
        XCTAssertFalse(io.isRunning)
    }

    func testConsoleSocketCarriesBothWays() throws {
        let program = try GuestBuilder.build("patient", ConsoleGuest.patientRoundTrip)
        let vm = try makeVM()
        let console = VirtioConsole()
        let transport = try vm.addVirtio(console)
        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair), 0)
        defer { close(pair[0]); close(pair[1]) }
        let io = try vm.startIOThread()
        let bridge = ConsoleSocket(fd: pair[1], transport: transport, stream: console, ioThread: io)
        try vm.load(program)
        try vm.enterLongMode()
        let join = try runInBackground(vm)
        XCTAssertEqual(try readExactly(pair[0], 4), "ping")
        XCTAssertEqual("pong".withCString { write(pair[0], $0, 4) }, 4)
        XCTAssertEqual(try readExactly(pair[0], 8), "got:pong")
        let stop = join()
        XCTAssertEqual(stop.map { $0.isClean }, true, "\(String(describing: stop))")
        vm.stopIOThread()
        XCTAssertFalse(bridge.hostClosed)
    }
}

/// Reads exactly `n` bytes (blocking, 5 s at most).
func readExactly(_ fd: Int32, _ n: Int) throws -> String {
    var out: [UInt8] = []
    let deadline = Clock.monotonic() + 5_000_000_000
    while out.count < n {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Clock.monotonic() < deadline, poll(&p, 1, 100) >= 0 else { break }
        if p.revents == 0 { continue }
        var buf = [UInt8](repeating: 0, count: n - out.count)
        let r = read(fd, &buf, buf.count)
        if r <= 0 { break }
        out += buf[0..<r]
    }
    return String(decoding: out, as: UTF8.self)
}
