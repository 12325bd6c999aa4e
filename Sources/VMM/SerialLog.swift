#if canImport(Glibc)
import Glibc
#endif

/// The guest's serial console as a file (console.log in the VM's state directory) plus an
/// in-memory tail for error messages. Bytes arrive on the vCPU thread; `tail` may be read from
/// any thread.
public final class SerialLog: @unchecked Sendable {
    var fd: Int32
    let lock = DeviceLock()
    var pending: [UInt8] = []
    var recent: [UInt8] = []
    public let tailBytes = 8192

    public init(path: String) throws(KvmError) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        if fd < 0 { throw .syscall("open \(path)", errno: errno) }
    }

    deinit { close() }

    /// Flushes and closes the file; the in-memory tail stays readable, later bytes only go there.
    public func close() {
        lock.withLock {
            writePending()
            if fd >= 0 { Glibc.close(fd); fd = -1 }
        }
    }

    public func append(_ byte: UInt8) {
        lock.withLock {
            pending.append(byte)
            recent.append(byte)
            if recent.count > 2 * tailBytes { recent.removeFirst(recent.count - tailBytes) }
            if byte == 10 || pending.count >= 4096 { writePending() }
        }
    }

    public func append(_ text: String) { for b in text.utf8 { append(b) } }

    public func flush() { lock.withLock { writePending() } }

    func writePending() {
        guard fd >= 0 else { pending.removeAll(); return }
        var off = 0
        while off < pending.count {
            let n = pending.withUnsafeBytes { write(fd, $0.baseAddress! + off, pending.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            off += n
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// The last `lines` non-empty lines, joined with " | " (like the QEMU backend's tail).
    public func tail(lines: Int = 5) -> String {
        // Split on bytes: in a String, Linux's "\r\n" is one Character and would not match "\n".
        let bytes = lock.withLock { Array(recent.suffix(tailBytes)) }
        let all = bytes.split(separator: 10).map { line in
            String(decoding: line.last == 13 ? line.dropLast() : line[...], as: UTF8.self)
        }.filter { !$0.isEmpty }
        return all.suffix(lines).joined(separator: " | ")
    }
}
