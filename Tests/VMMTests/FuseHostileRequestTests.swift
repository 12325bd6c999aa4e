#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import VMM

/// Malformed and random requests: each gets an error (or no reply) and the server keeps working
/// and stays inside its directory.
final class FuseHostileRequestTests: XCTestCase {
    func testMalformedRequests() throws {
        let tree = try TempTree()
        tree.mkdir("root")
        tree.write("root/f", "data")
        let c = FuseTestClient(try FuseServer(root: tree.path("root")))
        c.initialize()
        XCTAssertNil(c.server.handle([1, 2, 3]), "no header, no reply")
        XCTAssertNil(c.server.handle([UInt8](repeating: 0, count: 39)))
        // len beyond the bytes, len below the header size.
        var h = LittleEndianBytes()
        h.u32(4096); h.u32(FuseOpcode.getattr.rawValue); h.u64(77); h.u64(1); h.zeros(16)
        let r1 = try XCTUnwrap(c.server.handle(h.bytes))
        XCTAssertEqual(r1.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }, -EINVAL)
        XCTAssertEqual(r1.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self) }, 77, "the reply names the request")
        h.patch(UInt32(8), at: 0)
        XCTAssertEqual(try XCTUnwrap(c.server.handle(h.bytes)).withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }, -EINVAL)
        // Unknown opcodes, bodies too short for their structure.
        XCTAssertEqual(c.raw(9999, node: 1, []).map { Array($0[4..<8]) }, [0xda, 0xff, 0xff, 0xff])   // -ENOSYS
        XCTAssertEqual(c.call(.read, [1, 2, 3]).error, EINVAL)
        XCTAssertEqual(c.call(.write, FuseTestClient.le { $0.u64(1); $0.u64(0); $0.u32(1000); $0.zeros(20) } + [1, 2]).error, EINVAL,
                       "write size beyond the payload")
        XCTAssertEqual(c.call(.getxattr, [0, 0, 0, 0, 0, 0, 0, 0]).error, ENOSYS)
        // BATCH_FORGET claiming more entries than it carries is dropped silently (forgets get no reply).
        XCTAssertNil(c.raw(FuseOpcode.batchForget.rawValue, node: 0, FuseTestClient.le { $0.u32(1_000_000); $0.u32(0); $0.u64(1); $0.u64(1) }))
        XCTAssertNil(c.raw(FuseOpcode.forget.rawValue, node: 1, FuseTestClient.le { $0.u64(UInt64.max) }), "the root is never forgotten")
        XCTAssertEqual(c.lookup(Fuse.rootID, "f").0, 0)
        // Absurd sizes are clamped, not allocated.
        let (_, fh) = c.open(c.lookup(Fuse.rootID, "f").1!.node)
        XCTAssertEqual(c.read(fh, offset: UInt64(Int64.max), size: UInt32.max).body, [])
        XCTAssertEqual(c.read(fh, offset: UInt64.max).error, EINVAL)
        XCTAssertEqual(c.read(fh, size: UInt32.max).body, Array("data".utf8))
    }

    func testNodeAndHandleLimits() throws {
        let tree = try TempTree()
        tree.mkdir("root")
        for i in 0..<10 { tree.write("root/f\(i)", "x") }
        var options = FuseServer.Options()
        options.maxNodes = 5
        options.maxHandles = 2
        let c = FuseTestClient(try FuseServer(root: tree.path("root"), options: options))
        c.initialize()
        var errors: [Int32] = []
        for i in 0..<10 { errors.append(c.lookup(Fuse.rootID, "f\(i)").0) }
        XCTAssertEqual(errors, [0, 0, 0, 0, ENFILE, ENFILE, ENFILE, ENFILE, ENFILE, ENFILE])
        XCTAssertEqual(c.server.nodeCount, 5)
        let n = c.lookup(Fuse.rootID, "f0").1!.node
        XCTAssertEqual(c.open(n).0, 0)
        XCTAssertEqual(c.open(n).0, 0)
        XCTAssertEqual(c.open(n).0, EMFILE)
        XCTAssertEqual(c.call(.destroy).error, 0)
        XCTAssertEqual(c.server.nodeCount, 1)
        XCTAssertEqual(c.server.handleCount, 0)
        XCTAssertEqual(c.lookup(Fuse.rootID, "f0").0, EIO, "DESTROY ends the session")
    }

    /// Thousands of random requests (random opcodes, node ids, handles, names, sizes) on a tree
    /// with symlinks pointing out: no crash, every reply well-formed, nothing outside touched.
    func testRandomRequestsStayInside() throws {
        let tree = try TempTree()
        tree.mkdir("outside")
        tree.write("outside/keep", "keep")
        tree.mkdir("root")
        tree.mkdir("root/a")
        tree.write("root/a/f", "file")
        tree.symlink("../outside", "root/up")
        tree.symlink(tree.path("outside"), "root/abs")
        let c = FuseTestClient(try FuseServer(root: tree.path("root")))
        c.initialize()
        var rng = SystemRandomNumberGenerator()
        let names = ["a", "f", "up", "abs", "..", ".", "x", "a/f", "../outside", "new", "keep", "/"]
        let ops = Array(1...51).map(UInt32.init) + [4096, 0, UInt32.max]
        for i in 0..<5000 {
            let op = ops.randomElement(using: &rng)!
            let node = [0, 1, 2, 3, 4, 5, 6, 50, UInt64.max].randomElement(using: &rng)!
            var body = LittleEndianBytes()
            switch Int.random(in: 0..<4, using: &rng) {
            case 0:
                body.raw(FuseTestClient.name(names.randomElement(using: &rng)!))
                body.raw(FuseTestClient.name(names.randomElement(using: &rng)!))
            case 1:
                body.u64(UInt64.random(in: 0..<8, using: &rng)); body.u64(UInt64.random(in: 0..<64, using: &rng))
                body.u32(UInt32.random(in: 0..<8192, using: &rng)); body.zeros(20)
                body.raw(FuseTestClient.name(names.randomElement(using: &rng)!))
            case 2:
                body.u32(UInt32.random(in: 0...UInt32.max, using: &rng)); body.u32(UInt32.random(in: 0...0o177777, using: &rng))
                body.zeros(8)
                body.raw(FuseTestClient.name(names.randomElement(using: &rng)!))
            default:
                for _ in 0..<Int.random(in: 0..<120, using: &rng) { body.u8(UInt8.random(in: 0...255, using: &rng)) }
            }
            if op == FuseOpcode.destroy.rawValue || op == FuseOpcode.initialize.rawValue { continue }
            let reply = c.raw(op, node: node, body.bytes, maxReply: Int.random(in: 0..<70_000, using: &rng))
            if let reply {
                XCTAssertGreaterThanOrEqual(reply.count, 16, "request \(i)")
                XCTAssertEqual(reply.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) }, reply.count)
            }
        }
        XCTAssertEqual(tree.list("outside"), ["keep"])
        XCTAssertEqual(tree.read("outside/keep"), "keep")
        XCTAssertEqual(tree.mode("outside") & 0o777, 0o755)
        XCTAssertEqual(c.call(.statfs).error, 0, "still serving")
        print("random requests: errors by errno \(c.server.errorCounts.sorted { $0.key < $1.key }), nodes \(c.server.nodeCount)")
    }
}
