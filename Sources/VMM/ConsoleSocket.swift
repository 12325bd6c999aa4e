#if canImport(Glibc)
import Glibc
#endif

/// Connects a `HostByteStream` (a `VirtioConsole`, or a `VirtioSerial` port) to a host byte stream (one end of a socketpair, say) on the I/O
/// thread: bytes read from `fd` go to the guest (receive queue), bytes the guest transmits are written
/// to `fd`. Everything that touches the device or the buffers holds the transport's lock.
/// `fd` is made non-blocking; this object does not close it.
public final class ConsoleSocket: @unchecked Sendable {
    public let fd: Int32
    public let stream: HostByteStream
    public let transport: VirtioMMIOTransport
    /// Stop reading the host side while this much input waits for guest buffers.
    public var maxPendingInput = 256 << 10
    var output: [UInt8] = []
    var outputHead = 0
    /// The host end was closed (EOF or error on read).
    public private(set) var hostClosed = false
    /// Writing to the host failed (peer gone): further guest output is dropped.
    public private(set) var writeFailed = false
    weak var ioThread: IOThread?

    public init(fd: Int32, transport: VirtioMMIOTransport, stream: HostByteStream, ioThread: IOThread) {
        self.fd = fd; self.transport = transport; self.stream = stream; self.ioThread = ioThread
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        transport.lock.withLock {
            stream.onOutput = { [unowned self] bytes in   // runs with the lock held
                output += bytes
                flush()
                if outputHead < output.count { self.ioThread?.wake() }   // poll for POLLOUT
            }
        }
        ioThread.add(fd: fd, events: { [unowned self] in events() }) { [unowned self] revents in handle(revents) }
    }

    func events() -> Int16 {
        transport.lock.withLock {
            var e: Int16 = 0
            if !hostClosed, stream.pendingInputCount < maxPendingInput { e |= Int16(POLLIN) }
            if outputHead < output.count, !writeFailed { e |= Int16(POLLOUT) }
            return e
        }
    }

    func handle(_ revents: Int16) {
        if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
            var buf = [UInt8](repeating: 0, count: 64 << 10)
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            transport.lock.withLock {
                if n > 0 { stream.send(Array(buf[0..<n])) }
                else if n == 0 || (errno != EAGAIN && errno != EINTR) { hostClosed = true }
            }
        }
        if revents & Int16(POLLOUT) != 0 {
            transport.lock.withLock { flush() }
        }
    }

    /// Writes what it can without blocking (lock held).
    func flush() {
        guard !writeFailed else { output = []; outputHead = 0; return }
        while outputHead < output.count {
            // MSG_NOSIGNAL: a closed peer is EPIPE here, not SIGPIPE for the whole process.
            var n = output.withUnsafeBytes { send(fd, $0.baseAddress! + outputHead, output.count - outputHead, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == ENOTSOCK {
                n = output.withUnsafeBytes { write(fd, $0.baseAddress! + outputHead, output.count - outputHead) }
            }
            if n > 0 { outputHead += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { break }
            writeFailed = true
            break
        }
        if outputHead == output.count { output.removeAll(keepingCapacity: true); outputHead = 0 }
        else if outputHead > 64 << 10 { output.removeFirst(outputHead); outputHead = 0 }
    }
}
