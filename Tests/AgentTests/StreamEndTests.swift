import XCTest
#if canImport(Glibc)
import Glibc
#endif
import CShims
@testable import Agent

/// Preserved-fd relays (StreamEnd) on both sides of a real agent channel (a socketpair):
/// a "host" and a "guest" side each route frames to their ends, as the keeper and the agent
/// do, and the test plays the caller on the host fd and the container process on the guest fd.
final class StreamEndTests: XCTestCase {
    /// One side of the channel: its window and its ends, routed by (stream, fd).
    final class Side {
        let channel: Channel
        var window = SendWindow()
        var ends: [UInt64: StreamEnd] = [:]
        var maxPending = 0
        init(_ fd: Int32) { channel = Channel(fd: fd) }
        func add(_ e: StreamEnd) { ends[StreamKey.of(e.stream, e.number)] = e }

        func route(_ f: Frame) {
            switch f.kind {
            case .credit:
                if let (fd, n) = try? f.asCredit() { window.grant(f.stream, fd: fd, Int(n)) }
            case .data, .eof, .shut:
                guard let e = ends[StreamKey.of(f.stream, f.fd)] else { return }
                e.receive(f, channel: channel)
                maxPending = max(maxPending, e.pendingBytes)
            default:
                XCTFail("unexpected frame \(f.kind)")
            }
        }
    }

    var sides: [Side] = []
    var host: Side { sides[0] }
    var guest: Side { sides[1] }
    var toClose: [Int32] = []

    override func setUp() {
        signal(SIGPIPE, SIG_IGN)  // as the keeper: a reader that went away is EPIPE, not death
        var sv: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv), 0)
        sides = [Side(sv[0]), Side(sv[1])]
    }

    override func tearDown() {
        for s in sides { for e in s.ends.values { e.close() }; s.channel.close() }
        for fd in toClose { close(fd) }
    }

    /// One round of both sides' poll loops.
    func step(timeoutMs: Int32 = 5) {
        var fds: [pollfd] = []
        var owners: [(Side, StreamEnd?)] = []
        for s in sides {
            fds.append(pollfd(fd: s.channel.fd, events: Int16(POLLIN) | (s.channel.wantsWrite ? Int16(POLLOUT) : 0), revents: 0))
            owners.append((s, nil))
            for e in s.ends.values {
                let ev = e.pollEvents(s.window)
                if ev != 0 { fds.append(pollfd(fd: e.fd, events: ev, revents: 0)); owners.append((s, e)) }
            }
        }
        _ = poll(&fds, nfds_t(fds.count), timeoutMs)
        for (i, (s, e)) in owners.enumerated() where fds[i].revents != 0 {
            if let e {
                e.service(fds[i].revents, channel: s.channel, window: &s.window)
            } else {
                s.channel.flush()
                for f in (try? s.channel.receive()) ?? [] { s.route(f) }
            }
        }
        for s in sides { s.ends = s.ends.filter { !$0.value.isFinished } }
    }

    func run(until done: () -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Posix.monotonicNanos() + 20_000_000_000
        while !done() {
            if Posix.monotonicNanos() > deadline { XCTFail("timed out", file: file, line: line); return }
            step()
        }
    }

    func pipe(nonblocking: Bool = false) -> (read: Int32, write: Int32) {
        let p = try! Posix.pipe()
        if nonblocking { Posix.setNonblocking(p.read); Posix.setNonblocking(p.write) }
        toClose += [p.read, p.write]
        return p
    }

    func socketPair() -> (Int32, Int32) {
        var sv: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv), 0)
        toClose += sv
        return (sv[0], sv[1])
    }

    /// The test's copy of an fd that an end took over (ends close their own fd).
    func handOver(_ fd: Int32) -> Int32 {
        let copy = dup(fd)
        return copy
    }

    func readAvailable(_ fd: Int32) -> (bytes: [UInt8], eof: Bool) {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) > 0 else { return ([], false) }
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 65536) }
        if n <= 0 { return ([], n == 0 || errno != EAGAIN) }
        return (Array(buf[0..<n]), false)
    }

    func closeTracked(_ fd: Int32) {
        close(fd)
        toClose.removeAll { $0 == fd }
    }

    // MARK: tests

    /// `echo hi >&3` in the container: the host's pipe gets the bytes, then its end.
    func testOutputReachesTheHostPipeAndEnds() {
        let container = pipe(), caller = pipe()
        guest.add(StreamEnd(stream: 2, number: 3, fd: handOver(container.read), sends: true, receives: false, access: .nonblocking))
        Posix.setNonblocking(guest.ends.values.first!.fd)
        host.add(StreamEnd(stream: 2, number: 3, fd: handOver(caller.write), sends: false, receives: true, access: .guarded))
        closeTracked(container.read)
        closeTracked(caller.write)  // as the CLI does once the keeper has the fd
        emit(container.write, "hi\n")
        closeTracked(container.write)
        var got: [UInt8] = []
        var eof = false
        run { let r = readAvailable(caller.read); got += r.bytes; eof = eof || r.eof; return eof }
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "hi\n")
        XCTAssertTrue(host.ends.isEmpty && guest.ends.isEmpty, "both ends finished and closed")
    }

    /// `cat <&3` in the container: the host's pipe content arrives, then end of file.
    func testInputReachesTheContainerAndEnds() {
        let container = pipe(), caller = pipe()
        let g = StreamEnd(stream: 2, number: 3, fd: handOver(container.write), sends: false, receives: true, access: .nonblocking)
        Posix.setNonblocking(g.fd)
        guest.add(g)
        host.add(StreamEnd(stream: 2, number: 3, fd: handOver(caller.read), sends: true, receives: false, access: .guarded))
        closeTracked(container.write)
        closeTracked(caller.read)
        emit(caller.write, "line one\nline two\n")
        closeTracked(caller.write)
        var got: [UInt8] = []
        var eof = false
        run { let r = readAvailable(container.read); got += r.bytes; eof = eof || r.eof; return eof }
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "line one\nline two\n")
    }

    /// A regular file opened for reading streams from its current offset.
    func testRegularFileInputStreamsFromTheCurrentOffset() throws {
        let path = "/tmp/kata-streamend-\(getpid())"
        defer { unlink(path) }
        let fd = kata_open_mode(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        emit(fd, "skipped|content")
        XCTAssertEqual(lseek(fd, 8, SEEK_SET), 8)
        let container = pipe()
        let g = StreamEnd(stream: 5, number: 4, fd: handOver(container.write), sends: false, receives: true, access: .nonblocking)
        Posix.setNonblocking(g.fd)
        guest.add(g)
        closeTracked(container.write)
        host.add(StreamEnd(stream: 5, number: 4, fd: fd, sends: true, receives: false, access: .file))
        var got: [UInt8] = []
        var eof = false
        run { let r = readAvailable(container.read); got += r.bytes; eof = eof || r.eof; return eof }
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "content")
    }

    /// A connected socket both ways, with half-close passed on in each direction.
    func testDuplexSocketCarriesBothWaysAndHalfCloses() {
        let (client, callerSock) = socketPair()
        let (process, agentSock) = socketPair()
        host.add(StreamEnd(stream: 3, number: 3, fd: handOver(callerSock), sends: true, receives: true, access: .socket))
        let g = StreamEnd(stream: 3, number: 3, fd: handOver(agentSock), sends: true, receives: true, access: .socket, ownsSocket: true)
        Posix.setNonblocking(g.fd)
        guest.add(g)
        closeTracked(callerSock)
        closeTracked(agentSock)
        emit(client, "ping")
        XCTAssertEqual(shutdown(client, Int32(SHUT_WR)), 0)
        var got: [UInt8] = []
        var eof = false
        run { let r = readAvailable(process); got += r.bytes; eof = eof || r.eof; return eof }
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "ping", "the request, then the client's half-close")
        emit(process, "pong")
        closeTracked(process)
        got = []; eof = false
        run { let r = readAvailable(client); got += r.bytes; eof = eof || r.eof; return eof }
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "pong")
        run { host.ends.isEmpty && guest.ends.isEmpty }
    }

    /// Several MB through a preserved pipe whose host reader is slow: everything arrives in
    /// order, and neither side ever holds more than the window allows.
    func testSlowReaderIsFlowControlledAndDataArrivesIntact() {
        let container = pipe(nonblocking: true), caller = pipe(nonblocking: true)
        let g = StreamEnd(stream: 7, number: 3, fd: handOver(container.read), sends: true, receives: false, access: .nonblocking)
        Posix.setNonblocking(g.fd)
        guest.add(g)
        host.add(StreamEnd(stream: 7, number: 3, fd: handOver(caller.write), sends: false, receives: true, access: .guarded))
        closeTracked(container.read)
        closeTracked(caller.write)
        let total = 6 << 20
        var source = [UInt8](repeating: 0, count: total)
        var x: UInt32 = 12345
        for i in 0..<total { x = x &* 1_103_515_245 &+ 12345; source[i] = UInt8(truncatingIfNeeded: x >> 16) }
        var written = 0, received: [UInt8] = []
        received.reserveCapacity(total)
        var eof = false
        var steps = 0
        run {
            if written < total {
                let n = source.withUnsafeBytes { Glibc.write(container.write, $0.baseAddress! + written, min(65536, total - written)) }
                if n > 0 { written += n }
                if written == total { closeTracked(container.write) }
            }
            steps += 1
            if steps % 4 == 0 {  // the slow reader: 8 KiB every fourth round
                var buf = [UInt8](repeating: 0, count: 8192)
                let n = buf.withUnsafeMutableBytes { Glibc.read(caller.read, $0.baseAddress, 8192) }
                if n > 0 { received += buf[0..<n] } else if n == 0 { eof = true }
            }
            // Bytes read from the container's pipe but not yet in the caller's pipe: bounded by the window.
            let inFlight = SendWindow.initial - guest.window.available(7, fd: 3)
            XCTAssertLessThanOrEqual(inFlight, SendWindow.initial)
            return eof
        }
        XCTAssertEqual(received.count, total)
        XCTAssertTrue(received == source, "the bytes arrive intact and in order")
        XCTAssertLessThanOrEqual(host.maxPending, SendWindow.initial, "the host never queued more than one window")
    }

    /// The caller's reader goes away: the container's next write to fd 3 fails with EPIPE,
    /// as with a local pipe, instead of its output piling up somewhere.
    func testReaderGoneGivesTheWriterEPIPE() {
        let container = pipe(nonblocking: true), caller = pipe()
        let g = StreamEnd(stream: 2, number: 3, fd: handOver(container.read), sends: true, receives: false, access: .nonblocking)
        Posix.setNonblocking(g.fd)
        guest.add(g)
        host.add(StreamEnd(stream: 2, number: 3, fd: handOver(caller.write), sends: false, receives: true, access: .guarded))
        closeTracked(container.read)
        closeTracked(caller.write)
        closeTracked(caller.read)  // nobody reads any more
        var failure: Int32 = 0
        run {
            let n = Glibc.write(container.write, "data\n", 5)
            if n < 0 && errno != EAGAIN { failure = errno; return true }
            return false
        }
        XCTAssertEqual(failure, EPIPE)
        run { host.ends.isEmpty && guest.ends.isEmpty }
    }

    /// At the process's exit, what it left in the pipe is sent, then the end; the input side
    /// tells the host to stop reading.
    func testFinishForExitSendsTheRestThenTheEnd() {
        let container = pipe(), caller = pipe()
        let g = StreamEnd(stream: 2, number: 3, fd: handOver(container.read), sends: true, receives: false, access: .nonblocking)
        Posix.setNonblocking(g.fd)
        guest.add(g)
        host.add(StreamEnd(stream: 2, number: 3, fd: handOver(caller.write), sends: false, receives: true, access: .guarded))
        closeTracked(container.read)
        closeTracked(caller.write)
        emit(container.write, "last words")
        // A grandchild still holds the write end: exit must not wait for it.
        XCTAssertTrue(g.finishForExit(guest.channel, window: &guest.window))
        XCTAssertTrue(g.isFinished)
        var got: [UInt8] = []
        var eof = false
        run { let r = readAvailable(caller.read); got += r.bytes; eof = eof || r.eof; return eof }
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "last words")
    }

    /// A held end (a created container's process before start) relays nothing.
    func testHeldEndsWaitForStart() {
        let container = pipe(), caller = pipe()
        let g = StreamEnd(stream: 1, number: 3, fd: handOver(container.write), sends: false, receives: true, access: .nonblocking)
        Posix.setNonblocking(g.fd)
        guest.add(g)
        let h = StreamEnd(stream: 1, number: 3, fd: handOver(caller.read), sends: true, receives: false, access: .guarded)
        h.held = true
        host.add(h)
        closeTracked(container.write)
        closeTracked(caller.read)
        emit(caller.write, "early")
        for _ in 0..<20 { step(timeoutMs: 1) }
        XCTAssertEqual(readAvailable(container.read).bytes, [], "nothing before start")
        h.held = false
        closeTracked(caller.write)
        var got: [UInt8] = []
        var eof = false
        run { let r = readAvailable(container.read); got += r.bytes; eof = eof || r.eof; return eof }
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "early")
    }
}

private func emit(_ fd: Int32, _ s: String) {
    let b = Array(s.utf8)
    _ = b.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
}
