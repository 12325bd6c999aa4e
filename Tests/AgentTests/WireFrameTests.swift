import XCTest
@testable import Agent

final class WireTests: XCTestCase {
    func sample() -> [UInt8] {
        var w = WireWriter()
        w.u8(0xab)
        w.bool(true)
        w.bool(false)
        w.u32(0xdead_beef)
        w.i32(-2)
        w.u64(0x0123_4567_89ab_cdef)
        w.blob([0, 1, 2, 255])
        w.string("héllo 世界")
        w.strings(["a", "", "ccc"])
        w.string("")
        return w.bytes
    }

    func decode(_ bytes: [UInt8]) throws(WireError) {
        var r = WireReader(bytes)
        XCTAssertEqual(try r.u8(), 0xab)
        XCTAssertEqual(try r.bool(), true)
        XCTAssertEqual(try r.bool(), false)
        XCTAssertEqual(try r.u32(), 0xdead_beef)
        XCTAssertEqual(try r.i32(), -2)
        XCTAssertEqual(try r.u64(), 0x0123_4567_89ab_cdef)
        XCTAssertEqual(try r.blob(), [0, 1, 2, 255])
        XCTAssertEqual(try r.string(), "héllo 世界")
        XCTAssertEqual(try r.strings(), ["a", "", "ccc"])
        XCTAssertEqual(try r.string(), "")
        XCTAssertEqual(r.remaining, 0)
    }

    func testRoundTrip() throws {
        try decode(sample())
    }

    func testLittleEndianLayout() {
        var w = WireWriter()
        w.u32(0x0403_0201)
        w.u64(0x0807_0605_0403_0201)
        w.string("ab")
        XCTAssertEqual(w.bytes, [1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8, 2, 0, 0, 0, 0x61, 0x62])
    }

    func testExtremeValues() throws {
        var w = WireWriter()
        w.u32(UInt32.max); w.i32(Int32.min); w.i32(Int32.max); w.u64(UInt64.max); w.u64(0)
        var r = WireReader(w.bytes)
        XCTAssertEqual(try r.u32(), UInt32.max)
        XCTAssertEqual(try r.i32(), Int32.min)
        XCTAssertEqual(try r.i32(), Int32.max)
        XCTAssertEqual(try r.u64(), UInt64.max)
        XCTAssertEqual(try r.u64(), 0)
    }

    func testEveryTruncationThrowsInsteadOfCrashing() {
        let full = sample()
        for cut in 0..<full.count {
            XCTAssertThrowsError(try decodeQuietly(Array(full[0..<cut])), "cut at \(cut)")
        }
    }

    /// Like decode, but only throws: no assertions, so truncated input is judged by the throw alone.
    func decodeQuietly(_ bytes: [UInt8]) throws(WireError) {
        var r = WireReader(bytes)
        _ = try r.u8(); _ = try r.bool(); _ = try r.bool(); _ = try r.u32(); _ = try r.i32(); _ = try r.u64()
        _ = try r.blob(); _ = try r.string(); _ = try r.strings(); _ = try r.string()
    }

    func testLengthsLargerThanTheMessageAreRejected() {
        var w = WireWriter()
        w.u32(UInt32.max)  // blob length 4 GiB, followed by 3 bytes
        w.u8(1); w.u8(2); w.u8(3)
        var r = WireReader(w.bytes)
        XCTAssertThrowsError(try r.blob()) { e in
            XCTAssertTrue("\(e)".contains("truncated"), "\(e)")
        }
        var w2 = WireWriter()
        w2.u32(1_000_000)  // a million strings in 4 bytes
        w2.u32(0)
        var r2 = WireReader(w2.bytes)
        XCTAssertThrowsError(try r2.strings())
        var r3 = WireReader([])
        XCTAssertThrowsError(try r3.u8())
        XCTAssertThrowsError(try r3.u64())
    }
}

final class FrameTests: XCTestCase {
    let frames: [Frame] = [
        Frame(.ready, payload: Array("6.12.0".utf8)),
        Frame.data(7, fd: 1, Array(repeating: 0x41, count: 300)[...]),
        Frame(.eof, stream: 7, payload: [1]),
        Frame(.request, stream: 0, payload: []),  // header only
        Frame.exit(0xffff_fffe, status: -1),
    ]

    func testHeaderLayout() {
        let f = Frame(.data, stream: 0x0102_0304, payload: [9, 8, 7])
        XCTAssertEqual(f.encoded(), [8, 0, 0, 0, 3, 4, 3, 2, 1, 9, 8, 7])
        XCTAssertEqual(Frame.headerSize, 9)
    }

    func decodeAll(_ chunks: [[UInt8]], file: StaticString = #filePath, line: UInt = #line) throws -> [Frame] {
        var d = FrameDecoder()
        var out: [Frame] = []
        for c in chunks {
            d.feed(c)
            while let f = try d.next() { out.append(f) }
        }
        return out
    }

    func testSeveralFramesInOneBuffer() throws {
        let bytes = frames.flatMap { $0.encoded() }
        XCTAssertEqual(try decodeAll([bytes]), frames)
    }

    func testSplitAtEveryByteBoundary() throws {
        let bytes = frames.flatMap { $0.encoded() }
        for cut in 0...bytes.count {
            let got = try decodeAll([Array(bytes[..<cut]), Array(bytes[cut...])])
            XCTAssertEqual(got, frames, "split at \(cut)")
        }
        for cut1 in stride(from: 0, through: bytes.count, by: 7) {
            for cut2 in stride(from: cut1, through: bytes.count, by: 13) {
                let got = try decodeAll([Array(bytes[..<cut1]), Array(bytes[cut1..<cut2]), Array(bytes[cut2...])])
                XCTAssertEqual(got, frames, "split at \(cut1), \(cut2)")
            }
        }
    }

    func testOneByteAtATime() throws {
        let bytes = frames.flatMap { $0.encoded() }
        XCTAssertEqual(try decodeAll(bytes.map { [$0] }), frames)
    }

    func testIncompleteFrameWaitsForMoreBytes() throws {
        var d = FrameDecoder()
        let e = Frame(.log, payload: Array("hello".utf8)).encoded()
        d.feed(Array(e.dropLast()))
        XCTAssertNil(try d.next())
        XCTAssertNil(try d.next())
        d.feed([e.last!])
        XCTAssertEqual(try d.next(), Frame(.log, payload: Array("hello".utf8)))
        XCTAssertNil(try d.next())
    }

    func testRejectsOversizedLengthFromTheHeaderAlone() {
        var d = FrameDecoder()
        var w = WireWriter()
        w.u32(UInt32(5 + Frame.maxPayload + 1))
        d.feed(w.bytes)  // only the length: the decoder must not wait for 4 MiB to arrive
        XCTAssertThrowsError(try d.next()) { e in XCTAssertTrue("\(e)".contains("bad frame length"), "\(e)") }

        var d2 = FrameDecoder()
        d2.feed([0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0])
        XCTAssertThrowsError(try d2.next())
    }

    func testMaximumPayloadIsAccepted() throws {
        let f = Frame(.data, stream: 1, payload: Array(repeating: 7, count: Frame.maxPayload))
        XCTAssertEqual(try decodeAll([f.encoded()]), [f])
    }

    func testRejectsLengthTooShortForHeader() {
        for len: UInt32 in [0, 1, 4] {
            var d = FrameDecoder()
            var w = WireWriter()
            w.u32(len)
            d.feed(w.bytes + [1, 0, 0, 0, 0])
            XCTAssertThrowsError(try d.next(), "length \(len)")
        }
    }

    func testRejectsUnknownKinds() {
        for kind: UInt8 in [0, 10, 200, 255] {
            var d = FrameDecoder()
            var w = WireWriter()
            w.u32(5); w.u8(kind); w.u32(0)
            d.feed(w.bytes)
            XCTAssertThrowsError(try d.next(), "kind \(kind)") { e in
                XCTAssertTrue("\(e)".contains("unknown frame kind \(kind)"), "\(e)")
            }
        }
    }

    func testFrameHelpersRoundTrip() throws {
        let r = Frame.response(42, error: nil)
        XCTAssertEqual(r.kind, .response)
        XCTAssertEqual(try r.asResponse().0, 42)
        XCTAssertNil(try r.asResponse().1)
        let e = Frame.response(43, error: "mount /proc: Permission denied")
        XCTAssertEqual(try e.asResponse().0, 43)
        XCTAssertEqual(try e.asResponse().1, "mount /proc: Permission denied")
        // An error response with an empty message is still an error.
        XCTAssertEqual(try Frame.response(44, error: "").asResponse().1, "")

        let c = Frame.credit(3, fd: 0, 65536)
        XCTAssertEqual(c.stream, 3)
        XCTAssertEqual(try c.asCredit().0, 0)
        XCTAssertEqual(try c.asCredit().1, 65536)
        XCTAssertEqual(try Frame.exit(5, status: 0x8b00).asExit(), 0x8b00)
        XCTAssertEqual(try Frame.exit(5, status: -9).asExit(), -9)
        XCTAssertEqual(try Frame.text(.ready, "6.12.0-kata").asText(), "6.12.0-kata")
        let d = Frame.data(9, fd: 2, [1, 2, 3][...])
        XCTAssertEqual(d.fd, 2)
        XCTAssertEqual(Array(d.body), [1, 2, 3])
        XCTAssertEqual(Frame.eof(9, fd: 1).fd, 1)
        let shut = Frame.shut(9, fd: 4)
        XCTAssertEqual(shut.kind, .shut)
        XCTAssertEqual(shut.fd, 4)
        var sd = FrameDecoder()
        sd.feed(shut.encoded())
        XCTAssertEqual(try sd.next(), shut)
        XCTAssertEqual(Frame(.data).fd, 255)
        XCTAssertTrue(Frame(.data).body.isEmpty)
        // Decoders of truncated payloads throw.
        XCTAssertThrowsError(try Frame(.response, payload: [1, 0]).asResponse())
        XCTAssertThrowsError(try Frame(.credit, payload: [1, 0]).asCredit())
        XCTAssertThrowsError(try Frame(.exit, payload: []).asExit())
        XCTAssertThrowsError(try Frame(.log, payload: [10, 0, 0, 0, 65]).asText())
    }
}

final class RequestTests: XCTestCase {
    let requests: [Request] = [
        .createContainer(CreateContainer(
            id: "c1", config: Array(#"{"ociVersion":"1.0.2"}"#.utf8), rootfs: "/run/kata/shared/rootfs",
            binds: [BindMap(source: "/host/data", guestPath: "/run/kata/shared/binds/0"),
                    BindMap(source: "/etc/hosts", guestPath: "/run/kata/shared/binds/1")],
            stream: 1, seccomp: [4, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0xff, 0x7f])),
        .createContainer(CreateContainer(id: "", config: [], rootfs: "", binds: [], stream: 0)),
        .createContainer(CreateContainer(id: "c2", config: [], rootfs: "/r", binds: [], stream: 1,
                                         preserved: [PreservedFD(.output), PreservedFD(.listener, family: 10, port: 8080)])),
        .createContainer(CreateContainer(id: "net", config: [], rootfs: "/r", binds: [], stream: 1,
                                         network: NetworkConfigTests.sample)),
        .startContainer,
        .signal(stream: 1, signal: 9, all: false),
        .signal(stream: UInt32.max, signal: 15, all: true),
        .shutdown,
        .exec(stream: 2, process: Array(#"{"args":["sh"],"cwd":"/"}"#.utf8)),
        .exec(stream: 3, process: []),
        .exec(stream: 4, process: [], preserved: [PreservedFD(.input), PreservedFD(.output), PreservedFD(.duplex),
                                                  PreservedFD(.listener, family: 1)]),
        .connect(stream: 4, fd: 6, conn: 9),
        .resize(stream: 2, rows: 40, cols: 120),
        .pause(true),
        .pause(false),
        .stats,
        .update(resources: Array(#"{"memory":{"limit":67108864}}"#.utf8)),
        .processes,
    ]

    func testResponsesCarryBodies() throws {
        let ok = Frame.response(7, error: nil, body: Array("[1,2]".utf8))
        let (id, err, body) = try ok.asResponseWithBody()
        XCTAssertEqual(id, 7); XCTAssertNil(err); XCTAssertEqual(String(decoding: body, as: UTF8.self), "[1,2]")
        let failed = try Frame.response(8, error: "no container").asResponseWithBody()
        XCTAssertEqual(failed.1, "no container"); XCTAssertEqual(failed.2, [])
        // A reply without the body field (older agents) still decodes.
        var w = WireWriter(); w.u32(9); w.bool(true); w.string("")
        XCTAssertEqual(try Frame(.response, payload: w.bytes).asResponseWithBody().2, [])
    }

    func testEveryRequestRoundTripsThroughAFrame() throws {
        for (i, req) in requests.enumerated() {
            let frame = Frame.request(UInt32(i + 100), req)
            XCTAssertEqual(frame.kind, .request)
            var d = FrameDecoder()
            d.feed(frame.encoded())
            let got = try XCTUnwrap(try d.next())
            let (id, back) = try got.asRequest()
            XCTAssertEqual(id, UInt32(i + 100))
            XCTAssertEqual(back, req)
        }
    }

    func testNames() {
        XCTAssertEqual(requests[0].name, "create")
        XCTAssertEqual(Request.startContainer.name, "start")
        XCTAssertEqual(Request.signal(stream: 1, signal: 9, all: false).name, "signal 9")
        XCTAssertEqual(Request.signal(stream: 1, signal: 15, all: true).name, "signal 15 all")
        XCTAssertEqual(Request.shutdown.name, "shutdown")
        XCTAssertEqual(Request.pause(true).name, "pause")
        XCTAssertEqual(Request.pause(false).name, "resume")
        XCTAssertEqual(Request.exec(stream: 4, process: []).name, "exec on stream 4")
        XCTAssertEqual(Request.connect(stream: 4, fd: 3, conn: 7).name, "connect fd 3 of stream 4 as stream 7")
    }

    func testPreservedFDListsAreBounded() {
        // A count beyond what the frame holds, or beyond the fd numbers a frame can name, throws.
        for count: UInt32 in [UInt32(PreservedFD.maxCount + 1), 0x7fff_ffff] {
            var w = WireWriter()
            w.u32(1); w.u8(5); w.u32(2); w.blob([])  // exec on stream 2
            w.u32(count)
            for _ in 0..<min(Int(count), 300) { w.u8(1); w.u32(0); w.u32(0) }
            XCTAssertThrowsError(try Frame(.request, payload: w.bytes).asRequest(), "count \(count)")
        }
        var bad = WireWriter()
        bad.u32(1); bad.u8(5); bad.u32(2); bad.blob([]); bad.u32(1); bad.u8(9); bad.u32(0); bad.u32(0)
        XCTAssertThrowsError(try Frame(.request, payload: bad.bytes).asRequest()) { e in
            XCTAssertTrue("\(e)".contains("preserved fd kind"), "\(e)")
        }
    }

    func testTruncatedRequestsThrow() {
        for req in requests {
            let payload = Frame.request(1, req).payload
            for cut in 0..<payload.count {
                XCTAssertThrowsError(try Frame(.request, payload: Array(payload[..<cut])).asRequest(), "\(req.name) cut at \(cut)")
            }
        }
    }

    func testUnknownOpAndHugeBindCountThrow() {
        var w = WireWriter()
        w.u32(1); w.u8(99)
        XCTAssertThrowsError(try Frame(.request, payload: w.bytes).asRequest())

        var h = WireWriter()
        h.u32(1); h.u8(1)  // create
        h.string("id"); h.blob([]); h.string("/r")
        h.u32(0x7fff_ffff)  // bind count far beyond the bytes that follow
        h.u32(0)
        XCTAssertThrowsError(try Frame(.request, payload: h.bytes).asRequest()) { e in
            XCTAssertTrue("\(e)".contains("bind count"), "\(e)")
        }
    }
}
