import XCTest
import TestSupport
#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims
import OCI
@testable import HostRuntime

final class ContainerIDTests: XCTestCase {
    func testAccepted() {
        let docker = "4f7c2e1b9a8d6c5e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e"
        XCTAssertEqual(docker.count, 64)
        for id in ["abc", "a.b_c-d+1", docker, "A", "0", "..a", "a..", "x.y"] {
            XCTAssertNoThrow(try ContainerID.validate(id), id)
        }
    }

    func testRejected() {
        for id in ["", ".", "..", "a/b", "../x", "a b", "/abs", "a\nb", "a\0b", "é", "a:b", "a*", String(repeating: "a", count: 1025)] {
            XCTAssertThrowsError(try ContainerID.validate(id), id.debugDescription)
        }
        XCTAssertThrowsError(try ContainerID.validate("")) { e in
            XCTAssertEqual("\(e)", "container id cannot be empty")
        }
        XCTAssertThrowsError(try ContainerID.validate("a/b")) { e in
            XCTAssertTrue("\(e)".contains(#"invalid container id "a/b""#), "\(e)")
        }
    }
}

final class StateStoreTests: XCTestCase {
    var dir = ""
    var store: StateStore!

    override func setUp() {
        dir = makeTempDir("kata-state")
        store = StateStore(root: dir + "/root")  // a root that does not exist yet is created
    }

    override func tearDown() { Posix.removeAll(dir) }

    func sample(_ id: String) -> ContainerState {
        var s = ContainerState(id: id, bundle: "/bundles/\(id)", rootfs: "/bundles/\(id)/rootfs",
                               annotations: ["org.opencontainers.image.ref.name": "busybox", "quote": "a\"b"])
        s.created = "2024-01-02T03:04:05.123456789Z"
        s.pid = 4242
        s.pidStartTime = 18_446_744_073_709_551_000
        s.status = .paused
        s.exitStatus = 137
        s.owner = "root"
        return s
    }

    func testCreateThenDuplicateFails() throws {
        let d = try store.create("c1")
        XCTAssertEqual(d, dir + "/root/c1")
        XCTAssertTrue(Posix.isDirectory(d))
        XCTAssertThrowsError(try store.create("c1")) { e in
            XCTAssertEqual("\(e)", "container with id exists: c1")
        }
        XCTAssertThrowsError(try store.create("../escape"))
        XCTAssertFalse(Posix.exists(dir + "/escape"))
    }

    func testSaveLoadRoundTripsEveryField() throws {
        _ = try store.create("rt")
        let s = sample("rt")
        try store.save(s)
        let l = try store.load("rt")
        XCTAssertEqual(l.id, s.id)
        XCTAssertEqual(l.bundle, s.bundle)
        XCTAssertEqual(l.rootfs, s.rootfs)
        XCTAssertEqual(l.created, s.created)
        XCTAssertEqual(l.pid, s.pid)
        XCTAssertEqual(l.pidStartTime, s.pidStartTime)
        XCTAssertEqual(l.status, s.status)
        XCTAssertEqual(l.exitStatus, s.exitStatus)
        XCTAssertEqual(l.annotations, s.annotations)
        XCTAssertEqual(l.owner, s.owner)
        XCTAssertFalse(Posix.exists(store.directory("rt") + "/state.json.tmp"), "atomic write leaves no temp file")

        // Optional fields stay absent; every status survives.
        for st in [ContainerState.Status.creating, .created, .running, .paused, .stopped] {
            var t = ContainerState(id: "rt", bundle: "/b", rootfs: "", annotations: [:])
            t.status = st
            try store.save(t)
            let back = try store.load("rt")
            XCTAssertEqual(back.status, st)
            XCTAssertNil(back.exitStatus)
            XCTAssertEqual(back.annotations, [:])
            XCTAssertEqual(back.pid, 0)
        }
    }

    func testStateFileIsRuncShaped() throws {
        _ = try store.create("shape")
        try store.save(sample("shape"))
        let json = try JSONParser.parse(try Posix.readFile(store.directory("shape") + "/state.json"))
        XCTAssertEqual(json["id"]?.string, "shape")
        XCTAssertEqual(json["status"]?.string, "paused")
        XCTAssertEqual(json["pid"]?.int64, 4242)
        XCTAssertEqual(json["ociVersion"]?.string, "1.0.2")
        XCTAssertEqual(json["bundle"]?.string, "/bundles/shape")
        // `state` of a stopped container reports pid 0, as runc does.
        XCTAssertEqual(sample("x").runcJSON(status: .stopped)["pid"]?.int64, 0)
        XCTAssertEqual(sample("x").runcJSON(status: .running)["pid"]?.int64, 4242)
    }

    func testLoadUnknownAndDamaged() throws {
        XCTAssertThrowsError(try store.load("nope")) { e in
            XCTAssertEqual("\(e)", #"container "nope" does not exist"#)
        }
        XCTAssertThrowsError(try store.load("../etc")) { e in
            XCTAssertTrue("\(e)".contains("invalid container id"), "\(e)")
        }
        _ = try store.create("bad")
        writeFile(store.directory("bad") + "/state.json", "{not json")
        XCTAssertThrowsError(try store.load("bad")) { e in
            XCTAssertEqual("\(e)", #"container "bad": state file is damaged"#)
        }
        writeFile(store.directory("bad") + "/state.json", #"{"id": "bad", "bundle": "/b", "status": "exploded"}"#)
        XCTAssertThrowsError(try store.load("bad")) { e in XCTAssertTrue("\(e)".contains("damaged"), "\(e)") }
    }

    func testOutOfRangePidInStateFileIsDamagedNotACrash() throws {
        _ = try store.create("big")
        writeFile(store.directory("big") + "/state.json",
                  #"{"id": "big", "bundle": "/b", "status": "running", "pid": 99999999999, "exitStatus": 4294967296}"#)
        let store = self.store!
        // In a child: a trap must fail this test, not kill the whole test run.
        let (out, st) = runInChild { fd in
            do { _ = try store.load("big"); emit(fd, "loaded") } catch { emit(fd, "\(error)") }
            return 0
        }
        XCTAssertEqual(describeWaitStatus(st), "exit 0", "load crashed on an out-of-range pid")
        XCTAssertTrue(out.contains("damaged"), "got: \(out)")
    }

    func testCurrentStatus() throws {
        var s = ContainerState(id: "x", bundle: "/b", rootfs: "", annotations: [:])
        s.status = .running

        // A PID that cannot exist (above any pid_max).
        s.pid = Int32.max - 1
        XCTAssertEqual(store.currentStatus(s), .stopped)

        // Our own PID with our real start time: alive.
        let me = getpid()
        let start = try XCTUnwrap(ProcessInfo.stat(me)).startTime
        s.pid = me
        s.pidStartTime = start
        XCTAssertEqual(store.currentStatus(s), .running)
        s.status = .paused
        XCTAssertEqual(store.currentStatus(s), .paused)

        // Same PID, different start time: the PID was recycled by another process.
        s.status = .running
        s.pidStartTime = start + 1
        XCTAssertEqual(store.currentStatus(s), .stopped)

        // Stopped stays stopped even if the PID is alive.
        s.pidStartTime = start
        s.status = .stopped
        XCTAssertEqual(store.currentStatus(s), .stopped)

        // A PID that existed and was reaped.
        fflush(nil)
        let child = kata_fork()
        if child == 0 { _exit(0) }
        var st: Int32 = 0
        waitpid(child, &st, 0)
        s.status = .created
        s.pid = child
        s.pidStartTime = 0
        XCTAssertEqual(store.currentStatus(s), .stopped)
    }

    func testZombieIsNotAlive() throws {
        fflush(nil)
        let pid = kata_fork()
        if pid == 0 { _exit(0) }
        defer { var st: Int32 = 0; waitpid(pid, &st, 0) }
        let start = ProcessInfo.stat(pid)?.startTime ?? 0
        var zombie = false
        for _ in 0..<200 {
            if ProcessInfo.stat(pid)?.state == "Z" { zombie = true; break }
            usleep(10_000)
        }
        XCTAssertTrue(zombie, "child did not become a zombie")
        XCTAssertFalse(ProcessInfo.isAlive(pid, startTime: start))
        var s = ContainerState(id: "z", bundle: "/b", rootfs: "", annotations: [:])
        s.status = .running
        s.pid = pid
        XCTAssertEqual(store.currentStatus(s), .stopped)
    }

    func testList() throws {
        XCTAssertEqual(store.list(), [])
        for id in ["b", "a", "c"] { _ = try store.create(id) }
        try store.save(sample("b"))
        try store.save(sample("a"))
        // "c" has no state.json yet (create in progress): not listed.
        XCTAssertEqual(store.list(), ["a", "b"])
        store.remove("a")
        XCTAssertEqual(store.list(), ["b"])
        XCTAssertFalse(Posix.exists(store.directory("a")))
    }

    func testLockIsExclusive() throws {
        _ = try store.create("l")
        let lock = try store.lock("l")
        let path = store.directory("l") + "/lock"
        let (out, _) = runInChild { fd in
            let f = open(path, O_RDWR)
            emit(fd, flock(f, LOCK_EX | LOCK_NB) == 0 ? "got" : "busy")
            return 0
        }
        XCTAssertEqual(out, "busy")
        withExtendedLifetime(lock) {}
        XCTAssertThrowsError(try store.lock("missing"))
    }
}

final class ProcessInfoTests: XCTestCase {
    func testOwnProcess() throws {
        let s = try XCTUnwrap(ProcessInfo.stat(getpid()))
        XCTAssertTrue(["R", "S"].contains(s.state), "\(s.state)")
        XCTAssertGreaterThan(s.startTime, 0)
        XCTAssertTrue(ProcessInfo.isAlive(getpid(), startTime: s.startTime))
        XCTAssertTrue(ProcessInfo.isAlive(getpid(), startTime: 0))
        XCTAssertFalse(ProcessInfo.isAlive(getpid(), startTime: s.startTime + 1))
        XCTAssertNil(ProcessInfo.stat(0))
        XCTAssertNil(ProcessInfo.stat(-1))
        XCTAssertFalse(ProcessInfo.isAlive(Int32.max - 1, startTime: 0))
    }
}
