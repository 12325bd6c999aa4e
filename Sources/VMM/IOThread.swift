#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The VMM's device I/O thread: one pthread in a poll(2) loop over file descriptors, each with
/// a handler. `MicroVM.startIOThread()` gives it one ioeventfd per virtqueue (the guest's
/// QueueNotify writes land there without an exit to user space) and host-side sources such as
/// the agent socket (`ConsoleSocket`). Handlers take their device's `DeviceLock`; the poll loop
/// itself holds no device state.
public final class IOThread: @unchecked Sendable {
    public final class Source {
        let fd: Int32
        /// poll(2) events wanted now (0: not polled this round). Asked before every poll.
        let events: () -> Int16
        let handle: (Int16) -> Void
        init(fd: Int32, events: @escaping () -> Int16, handle: @escaping (Int16) -> Void) {
            self.fd = fd; self.events = events; self.handle = handle
        }
    }

    let lock = DeviceLock()
    var sources: [Source] = []
    let wakeFD: EventFD
    let stopping = Atomic<Bool>(false)
    var thread: NativeThread?
    /// How often the loop re-asks sources for their events even when nothing happened (ms):
    /// a source throttled because its device is full resumes at least this often.
    public var idleRecheckMs: Int32 = 100
    /// Rounds of the loop that handled at least one event (for tests and diagnostics).
    public let wakeups = Atomic<Int>(0)

    public init() throws(KvmError) { wakeFD = try EventFD() }

    /// Adds a descriptor; safe from any thread, before or after `start`.
    public func add(fd: Int32, events: @escaping () -> Int16, handle: @escaping (Int16) -> Void) {
        lock.withLock { sources.append(Source(fd: fd, events: events, handle: handle)) }
        wake()
    }

    /// Removes every source on `fd` (call before closing it).
    public func remove(fd: Int32) {
        lock.withLock { sources.removeAll { $0.fd == fd } }
        wake()
    }

    /// Makes the loop re-evaluate its sources now.
    public func wake() { wakeFD.signal() }

    public func start() throws(KvmError) {
        guard thread == nil else { return }
        thread = try NativeThread(name: "vmm-io") { [self] in loop() }
    }

    /// Ends the loop and joins the thread; safe to call twice.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake()
        thread?.join()
        thread = nil
    }

    public var isRunning: Bool { thread != nil && !stopping.load(ordering: .acquiring) }

    func loop() {
        var fds: [pollfd] = []
        var owners: [Source] = []
        while !stopping.load(ordering: .acquiring) {
            let current = lock.withLock { sources }
            fds.removeAll(keepingCapacity: true)
            owners.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wakeFD.fd, events: Int16(POLLIN), revents: 0))
            for s in current {
                let e = s.events()
                if e != 0 { fds.append(pollfd(fd: s.fd, events: e, revents: 0)); owners.append(s) }
            }
            let n = poll(&fds, nfds_t(fds.count), idleRecheckMs)
            if n < 0 {
                if errno == EINTR { continue }
                break
            }
            if n == 0 { continue }
            wakeups.add(1, ordering: .relaxed)
            if fds[0].revents != 0 { _ = wakeFD.take() }
            for i in 1..<fds.count where fds[i].revents != 0 {
                owners[i - 1].handle(fds[i].revents)
            }
        }
    }
}
