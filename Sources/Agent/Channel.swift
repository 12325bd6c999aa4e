#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking file descriptor that carries frames: the agent port in the guest,
/// the unix socket to QEMU's chardev on the host. Writes queue when the peer is slow.
public final class Channel {
    public let fd: Int32
    var decoder = FrameDecoder()
    var pending: [UInt8] = []
    public private(set) var isClosed = false

    public init(fd: Int32) {
        self.fd = fd
        Posix.setNonblocking(fd)
    }

    public var wantsWrite: Bool { !pending.isEmpty }

    public func send(_ f: Frame) {
        pending.append(contentsOf: f.encoded())
        flush()
    }

    /// Writes what the peer accepts now.
    public func flush() {
        while !pending.isEmpty && !isClosed {
            let n = pending.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n > 0 { pending.removeFirst(n); continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return }
            isClosed = true
        }
    }

    /// Writes everything, waiting for the peer as long as needed.
    public func drain() {
        while wantsWrite && !isClosed {
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, 1000)
            flush()
        }
    }

    /// Reads what is available and returns the complete frames.
    public func receive() throws(WireError) -> [Frame] {
        var out: [Frame] = []
        while !isClosed {
            let chunk: [UInt8]?
            do { chunk = try Posix.readSome(fd) } catch { isClosed = true; break }
            guard let c = chunk else { break }
            if c.isEmpty { isClosed = true; break }
            decoder.feed(c)
            if c.count < 65536 { break }
        }
        while let f = try decoder.next() { out.append(f) }
        return out
    }

    /// Blocks until a frame arrives or `timeoutMs` passes (nil: timed out or closed).
    public func waitFrame(timeoutMs: Int32) throws(WireError) -> Frame? {
        if let f = try decoder.next() { return f }
        let deadline = Posix.monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        while !isClosed {
            let now = Posix.monotonicNanos()
            if now >= deadline { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32((deadline - now) / 1_000_000) + 1)
            if r < 0 && errno != EINTR { isClosed = true; return nil }
            if r > 0 {
                let chunk: [UInt8]?
                do { chunk = try Posix.readSome(fd) } catch { isClosed = true; return nil }
                guard let c = chunk else { continue }
                if c.isEmpty { isClosed = true; return nil }
                decoder.feed(c)
                if let f = try decoder.next() { return f }
            }
        }
        return nil
    }

    public func close() {
        if !isClosed { isClosed = true }
        Glibc.close(fd)
    }
}
