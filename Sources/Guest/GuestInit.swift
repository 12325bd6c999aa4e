#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims

/// PID 1 inside the VM: prepares the guest, finds the agent port, serves the agent.
public enum GuestInit {
    public static let sharedDir = "/run/kata/shared"
    public static let shareTag = "kataShared"

    nonisolated(unsafe) static var debug = false
    /// The console, kept apart from fd 2 so the forked container child can still trace.
    nonisolated(unsafe) static var consoleFD: Int32 = 2

    public static func main() -> Never {
        // /proc is already mounted (CShims constructor), so the command line is readable.
        debug = ((try? Posix.readFile("/proc/cmdline")).map { String(decoding: $0, as: UTF8.self) } ?? "")
            .split(whereSeparator: { $0 == " " || $0 == "\n" }).contains("kata.debug")
        consoleFD = kata_fcntl_int(2, F_DUPFD_CLOEXEC, 100)
        if consoleFD < 0 { consoleFD = 2 }
        trace("guest init starting")
        earlyMounts()
        trace("guest mounts done")
        guard let port = findAgentPort() else { fatal("no virtio port named \"agent\"") }
        trace("agent port \(port)")
        let fd = open(port, O_RDWR | O_CLOEXEC | O_NOCTTY)
        if fd < 0 { fatal("open \(port): \(String(cString: strerror(errno)))") }
        let server = AgentServer(channel: Channel(fd: fd))
        server.run()
    }

    /// pivot_root(2) cannot move the initramfs (it is the absolute root), so the guest
    /// first moves a tmpfs over / and chroots into it; containers can then pivot_root.
    /// The running binary stays mapped from the initramfs, so nothing is re-executed.
    static func leaveInitramfs() {
        let top = "/newroot"
        mkdir(top, 0o755)
        guard mount("tmpfs", top, "tmpfs", 0, "mode=0755") == 0, chdir(top) == 0,
              mount(top, "/", "", MS_MOVE, nil) == 0, chroot(".") == 0, chdir("/") == 0 else {
            fatal("switch root to tmpfs: \(String(cString: strerror(errno)))")
        }
    }

    static func earlyMounts() {
        leaveInitramfs()
        let mounts: [(String, String, String, UInt, String?)] = [
            ("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nil),
            ("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nil),
            ("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"),
            ("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666"),
            ("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, nil),
            ("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"),
            ("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, nil),
            ("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nil),
            (shareTag, sharedDir, "virtiofs", 0, nil),
        ]
        for (src, dst, type, flags, data) in mounts {
            try? Posix.mkdirAll(dst)
            let r = data.map { mount(src, dst, type, flags, $0) } ?? mount(src, dst, type, flags, nil)
            if r != 0 && errno != EBUSY { log("mount \(type) on \(dst): \(String(cString: strerror(errno)))") }
        }
    }

    /// The virtio-serial port QEMU (or our VMM) created with name=agent.
    static func findAgentPort() -> String? {
        for _ in 0..<500 {
            for dev in Posix.listDirectory("/sys/class/virtio-ports") {
                let name = (try? Posix.readFile("/sys/class/virtio-ports/\(dev)/name")) ?? []
                if String(decoding: name, as: UTF8.self).hasPrefix("agent") { return "/dev/" + dev }
            }
            usleep(10_000)
        }
        return nil
    }

    public static func kernelRelease() -> String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: u.release) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    }

    /// Debug trace with the guest's uptime in ms, to see where boot and create time goes.
    static func trace(_ s: @autoclosure () -> String) {
        guard debug else { return }
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        log("[\(Int(ts.tv_sec) * 1000 + Int(ts.tv_nsec) / 1_000_000) ms] " + s())
    }

    static func log(_ s: String) {
        let line = "kata-init: " + s + "\n"
        _ = line.withCString { write(consoleFD, $0, strlen($0)) }
    }

    static func fatal(_ s: String) -> Never {
        log(s)
        sync()
        _ = kata_reboot(0x0123_4567)  // RB_AUTOBOOT: with reboot=t and -no-reboot QEMU exits
        exit(1)
    }
}
