import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import Agent

final class SendWindowTests: XCTestCase {
    func testFreshWindow() {
        let w = SendWindow()
        XCTAssertEqual(w.available(1, fd: 1), SendWindow.initial)
        XCTAssertEqual(w.chunk(1, fd: 1), SendWindow.maxChunk)
        XCTAssertLessThanOrEqual(SendWindow.maxChunk, SendWindow.initial)
    }

    func testSpendAndGrantArithmetic() {
        var w = SendWindow()
        w.spend(3, fd: 1, SendWindow.initial - 1000)
        XCTAssertEqual(w.available(3, fd: 1), 1000)
        XCTAssertEqual(w.chunk(3, fd: 1), 1000)
        w.spend(3, fd: 1, 1000)
        XCTAssertEqual(w.available(3, fd: 1), 0)
        XCTAssertEqual(w.chunk(3, fd: 1), 0, "no credit: nothing may be sent")
        w.grant(3, fd: 1, 500)
        XCTAssertEqual(w.available(3, fd: 1), 500)
        XCTAssertEqual(w.chunk(3, fd: 1), 500)
        w.grant(3, fd: 1, SendWindow.initial - 500)
        XCTAssertEqual(w.available(3, fd: 1), SendWindow.initial, "all bytes drained: the window is whole again")
    }

    func testStreamsAndFdsAreIndependent() {
        var w = SendWindow()
        w.spend(1, fd: 1, 100)
        w.spend(256, fd: 0, 200)
        w.spend(1, fd: 2, 300)
        XCTAssertEqual(w.available(1, fd: 1), SendWindow.initial - 100)
        XCTAssertEqual(w.available(256, fd: 0), SendWindow.initial - 200)
        XCTAssertEqual(w.available(1, fd: 2), SendWindow.initial - 300)
        XCTAssertEqual(w.available(1, fd: 0), SendWindow.initial)
        XCTAssertEqual(w.available(2, fd: 1), SendWindow.initial)
        XCTAssertEqual(w.available(0, fd: 1), SendWindow.initial)
        XCTAssertEqual(w.available(UInt32.max, fd: 255), SendWindow.initial)
        w.forget(1)
        XCTAssertEqual(w.available(1, fd: 1), SendWindow.initial)
        XCTAssertEqual(w.available(1, fd: 2), SendWindow.initial)
        XCTAssertEqual(w.available(256, fd: 0), SendWindow.initial - 200, "forget touches one stream only")
    }

    func testChunkNeverExceedsCredit() {
        // A sender that always sends a full chunk and a receiver that returns credit late.
        var w = SendWindow()
        var inFlight: [Int] = []
        var rng = SystemRandomNumberGenerator()
        var sent = 0
        for step in 0..<5000 {
            let c = w.chunk(5, fd: 1)
            XCTAssertGreaterThanOrEqual(c, 0)
            XCTAssertLessThanOrEqual(c, w.available(5, fd: 1))
            XCTAssertLessThanOrEqual(c, SendWindow.maxChunk)
            if c > 0 && Bool.random(using: &rng) {
                let n = Int.random(in: 1...c, using: &rng)
                w.spend(5, fd: 1, n)
                inFlight.append(n)
                sent += n
            } else if !inFlight.isEmpty {
                w.grant(5, fd: 1, inFlight.removeFirst())
            }
            XCTAssertLessThanOrEqual(inFlight.reduce(0, +), SendWindow.initial, "step \(step): more than a window in flight")
            if w.available(5, fd: 1) + inFlight.reduce(0, +) != SendWindow.initial {
                XCTFail("step \(step): credit + in flight != window"); break
            }
        }
        XCTAssertGreaterThan(sent, SendWindow.initial, "the test sent more than one window's worth")
    }

    func testGrantIsCapped() {
        var w = SendWindow()
        for _ in 0..<100 { w.grant(7, fd: 2, Int(UInt32.max)) }
        XCTAssertLessThanOrEqual(w.available(7, fd: 2), SendWindow.initial * 4, "a peer cannot grant unbounded credit")
        XCTAssertGreaterThanOrEqual(w.available(7, fd: 2), SendWindow.initial)
        XCTAssertEqual(w.chunk(7, fd: 2), SendWindow.maxChunk)
    }
}

final class ChannelTests: XCTestCase {
    var fds: [Int32] = [-1, -1]

    override func setUpWithError() throws {
        fds = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            throw XCTSkip("socketpair failed: \(String(cString: strerror(errno)))")
        }
    }

    func pattern(_ frame: Int, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ frame &* 7) }
    }

    func testManyFramesArriveInOrderInOneThread() throws {
        let a = Channel(fd: fds[0]), b = Channel(fd: fds[1])
        defer { a.close(); b.close() }
        // 2 MiB of data frames of assorted sizes, then an exit frame.
        var sent: [Frame] = []
        var total = 0
        var i = 0
        while total < 2 << 20 {
            let size = [1, 32 * 1024, 1000, 65536, 7][i % 5]
            sent.append(.data(UInt32(i % 3 + 1), fd: UInt8(i % 2 + 1), pattern(i, size)[...]))
            total += size
            i += 1
        }
        sent.append(.exit(1, status: 0))
        var got: [Frame] = []
        for f in sent {
            a.send(f)
            // The socket buffer is far smaller than 2 MiB: read to make room while we write.
            var spins = 0
            while a.wantsWrite {
                got += try b.receive()
                a.flush()
                spins += 1
                if spins > 100_000 { XCTFail("writer made no progress"); return }
            }
        }
        var spins = 0
        while got.count < sent.count && spins < 1000 {
            got += try b.receive()
            if got.count < sent.count { if let f = try b.waitFrame(timeoutMs: 100) { got.append(f) } }
            spins += 1
        }
        XCTAssertFalse(a.isClosed)
        XCTAssertFalse(b.isClosed)
        XCTAssertEqual(got.count, sent.count)
        if got != sent {
            let first = zip(got, sent).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(got.count, sent.count)
            XCTFail("frames differ from index \(first)")
        }
    }

    func testBothDirections() throws {
        let a = Channel(fd: fds[0]), b = Channel(fd: fds[1])
        defer { a.close(); b.close() }
        a.send(.request(1, .startContainer))
        let req = try XCTUnwrap(try b.waitFrame(timeoutMs: 2000))
        XCTAssertEqual(try req.asRequest().1, .startContainer)
        b.send(.response(1, error: nil))
        let resp = try XCTUnwrap(try a.waitFrame(timeoutMs: 2000))
        XCTAssertEqual(try resp.asResponse().0, 1)
    }

    func testWaitFrameTimesOut() throws {
        let a = Channel(fd: fds[0]), b = Channel(fd: fds[1])
        defer { a.close(); b.close() }
        let t0 = Posix.monotonicNanos()
        XCTAssertNil(try b.waitFrame(timeoutMs: 150))
        let ms = (Posix.monotonicNanos() - t0) / 1_000_000
        XCTAssertGreaterThanOrEqual(ms, 140)
        XCTAssertLessThan(ms, 2000)
        XCTAssertFalse(b.isClosed, "a timeout is not a closed channel")
        // Half a frame is not a frame either.
        let e = Frame.text(.log, "partial").encoded()
        _ = e.withUnsafeBytes { write(fds[0], $0.baseAddress, 6) }
        XCTAssertNil(try b.waitFrame(timeoutMs: 100))
        _ = e.withUnsafeBytes { write(fds[0], $0.baseAddress! + 6, e.count - 6) }
        XCTAssertEqual(try b.waitFrame(timeoutMs: 1000).map { try $0.asText() }, "partial")
    }

    func testClosingThePeerClosesTheChannel() throws {
        let a = Channel(fd: fds[0]), b = Channel(fd: fds[1])
        defer { b.close() }
        a.send(.text(.log, "last words"))
        a.close()
        // Frames sent before the close still arrive; then the channel reports closed.
        let frames = try b.receive()
        XCTAssertEqual(frames.count, 1)
        XCTAssertEqual(try frames.first?.asText(), "last words")
        _ = try b.receive()
        XCTAssertTrue(b.isClosed)
        XCTAssertNil(try b.waitFrame(timeoutMs: 1000))
    }

    func testWaitFrameNoticesPeerClose() throws {
        let a = Channel(fd: fds[0]), b = Channel(fd: fds[1])
        defer { b.close() }
        a.close()
        let t0 = Posix.monotonicNanos()
        XCTAssertNil(try b.waitFrame(timeoutMs: 5000))
        XCTAssertTrue(b.isClosed)
        XCTAssertLessThan((Posix.monotonicNanos() - t0) / 1_000_000, 4000, "closed peer must not cost the whole timeout")
    }

    func testWritingToAClosedPeerMarksClosed() {
        signal(SIGPIPE, SIG_IGN)  // as the keeper does
        let a = Channel(fd: fds[0]), b = Channel(fd: fds[1])
        defer { a.close() }
        b.close()
        a.send(.data(1, fd: 1, [1, 2, 3][...]))
        a.send(.data(1, fd: 1, [1, 2, 3][...]))
        XCTAssertTrue(a.isClosed)
    }

    func testGarbageOnTheChannelThrows() throws {
        let b = Channel(fd: fds[1])
        defer { b.close(); close(fds[0]) }
        let junk: [UInt8] = [5, 0, 0, 0, 77, 0, 0, 0, 0]
        _ = junk.withUnsafeBytes { write(fds[0], $0.baseAddress, $0.count) }
        var p = pollfd(fd: fds[1], events: Int16(POLLIN), revents: 0)
        _ = poll(&p, 1, 1000)
        XCTAssertThrowsError(try b.receive())
    }
}
