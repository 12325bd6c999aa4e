#if canImport(Glibc)
import Glibc
#endif
import CShims

/// One relayed byte stream between a local fd and a (stream, fd number) pair on the agent
/// channel: a preserved fd of a container process (numbers 3, 4, ...) or a connection
/// accepted on a preserved listening socket (number 0 of its own stream). The keeper runs one
/// over the caller's fd, the guest agent over the pipe or socketpair end it made.
///
/// Flow control as for stdio: bytes are read from the fd only while the peer has granted
/// credit, and credit is returned only once bytes are written out, so a slow reader stalls
/// this stream alone and memory stays bounded by the window.
///
/// Ends: `eof` says "my data ended"; `shut` says "I no longer read yours" (the reader went
/// away), so the writer on the other side gets EPIPE as it would on a local pipe.
public final class StreamEnd {
    /// How to do I/O on the fd without ever blocking the relay.
    public enum Access: Sendable {
        /// O_NONBLOCK and ours alone (the guest's pipes and sockets, a host FIFO reopened).
        case nonblocking
        /// A socket: MSG_DONTWAIT per call, the shared file's flags stay as the caller set them.
        case socket
        /// A regular file or block device: never waits for a peer.
        case file
        /// Anything else shared with the caller (a terminal, a character device): read only
        /// when poll says so, write at most PIPE_BUF bytes per poll.
        case guarded
    }

    public let stream: UInt32
    public let number: UInt8
    public private(set) var fd: Int32
    let access: Access
    /// A socketpair end of our own (the guest's), which may be shut down in either direction;
    /// a socket shared with the caller is only shut for writing, as the container asked.
    let ownsSocket: Bool
    /// Local fd → channel.
    public private(set) var sending: Bool
    /// Channel → local fd.
    public private(set) var receiving: Bool
    /// Bytes received and not yet written, from `head` on.
    var queue: [UInt8] = []
    var head = 0
    var peerEnded = false
    /// Relaying waits while set (the process of a created container, before start).
    public var held = false

    public init(stream: UInt32, number: UInt8, fd: Int32, sends: Bool, receives: Bool, access: Access, ownsSocket: Bool = false) {
        self.stream = stream; self.number = number; self.fd = fd
        sending = sends; receiving = receives
        self.access = access; self.ownsSocket = ownsSocket
    }

    public var isFinished: Bool { !sending && !receiving }
    public var pendingBytes: Int { queue.count - head }

    /// What to poll the fd for now; 0: leave it out of the poll set (a hung-up fd would
    /// otherwise wake the loop forever).
    public func pollEvents(_ window: SendWindow) -> Int16 {
        guard fd >= 0, !held else { return 0 }
        var e: Int16 = 0
        if sending && window.chunk(stream, fd: number) > 0 { e |= Int16(POLLIN) }
        if receiving && pendingBytes > 0 { e |= Int16(POLLOUT) }
        return e
    }

    /// After poll reported `revents` for the fd.
    public func service(_ revents: Int16, channel: Channel, window: inout SendWindow) {
        let hup = Int16(POLLHUP) | Int16(POLLERR)
        if receiving && pendingBytes > 0 && revents & (Int16(POLLOUT) | hup) != 0 { flush(channel) }
        if sending && revents & (Int16(POLLIN) | hup) != 0 { pump(channel, &window) }
    }

    /// A data, eof or shut frame for this end.
    public func receive(_ f: Frame, channel: Channel) {
        switch f.kind {
        case .data:
            guard receiving else { return }  // we sent shut; the peer stops soon
            if head > 0 && head >= queue.count / 2 { queue.removeFirst(head); head = 0 }
            queue.append(contentsOf: f.body)
            flush(channel)
        case .eof:
            peerEnded = true
            flush(channel)
        case .shut:
            guard sending else { return }
            sending = false
            // Our own socketpair end: the process's next write fails with EPIPE.
            if ownsSocket && receiving { _ = shutdown(fd, Int32(SHUT_RD)) }
            closeIfDone()
        default:
            break
        }
    }

    /// Reads one chunk within the window and sends it.
    func pump(_ channel: Channel, _ window: inout SendWindow) {
        let max = window.chunk(stream, fd: number)
        guard sending, !held, max > 0 else { return }
        switch read(max) {
        case .data(let d):
            window.spend(stream, fd: number, d.count)
            channel.send(.data(stream, fd: number, d[...]))
        case .wouldBlock:
            break
        case .end:
            endSending(channel)
        }
    }

    /// The local fd reached its end: tell the peer. When the process closed its socketpair
    /// end entirely (not just shut it for writing), say first that we no longer read, so
    /// the peer closes its fd instead of half-closing a shared socket.
    func endSending(_ channel: Channel) {
        sending = false
        if ownsSocket && receiving && peerHungUp() { stopReceiving(channel) }
        channel.send(.eof(stream, fd: number))
        closeIfDone()
    }

    func peerHungUp() -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN) | 0x2000 /* POLLRDHUP */, revents: 0)
        return poll(&p, 1, 0) > 0 && p.revents & Int16(POLLHUP) != 0
    }

    /// Writes what the fd takes now and returns credit for it.
    func flush(_ channel: Channel) {
        var written = 0
        while receiving && pendingBytes > 0 {
            let n = write()
            if n > 0 { head += n; written += n; continue }
            if n == 0 { break }  // would block
            stopReceiving(channel)  // the reader went away
        }
        if pendingBytes == 0 { queue.removeAll(keepingCapacity: true); head = 0 }
        if written > 0 && receiving { channel.send(.credit(stream, fd: number, UInt32(written))) }
        if receiving && peerEnded && pendingBytes == 0 { finishReceiving() }
        closeIfDone()
    }

    /// Every byte of the peer's data is written: pass its end on.
    func finishReceiving() {
        receiving = false
        // A socket still sending the other way is half-closed: the reader there sees the end.
        if access == .socket && sending { _ = shutdown(fd, Int32(SHUT_WR)) }
    }

    func stopReceiving(_ channel: Channel) {
        receiving = false
        queue = []; head = 0
        channel.send(.shut(stream, fd: number))
    }

    /// The process this end belongs to exited (guest side): stop reading the peer's data,
    /// send what can be read now without waiting, then the end. False while out of credit.
    public func finishForExit(_ channel: Channel, window: inout SendWindow) -> Bool {
        if receiving { stopReceiving(channel) }
        while sending {
            let max = window.chunk(stream, fd: number)
            if max == 0 { return false }
            guard case .data(let d) = read(max) else { sending = false; channel.send(.eof(stream, fd: number)); break }
            window.spend(stream, fd: number, d.count)
            channel.send(.data(stream, fd: number, d[...]))
        }
        closeIfDone()
        return true
    }

    /// The process exited (host side): its input is no longer read; output still arrives
    /// up to the peer's eof.
    public func stopSending() {
        sending = false
        closeIfDone()
    }

    public func close() {
        sending = false; receiving = false
        closeIfDone()
    }

    func closeIfDone() {
        if !sending && !receiving && fd >= 0 {
            Glibc.close(fd)
            fd = -1
            queue = []; head = 0
        }
    }

    // MARK: I/O

    enum ReadResult { case data([UInt8]), wouldBlock, end }

    func read(_ max: Int) -> ReadResult {
        if access == .guarded && !ready(Int16(POLLIN)) { return .wouldBlock }
        var buf = [UInt8](repeating: 0, count: max)
        while true {
            let n = buf.withUnsafeMutableBytes { b -> Int in
                access == .socket ? recv(fd, b.baseAddress, max, Int32(MSG_DONTWAIT)) : Glibc.read(fd, b.baseAddress, max)
            }
            if n > 0 { buf.removeSubrange(n...); return .data(buf) }
            if n == 0 { return .end }
            if errno == EINTR { continue }
            if errno == EAGAIN { return .wouldBlock }
            return .end  // ECONNRESET, EIO (a hung-up terminal): the data ended
        }
    }

    /// Bytes written; 0 when the fd would block; -1 when the reader is gone.
    func write() -> Int {
        if access == .guarded && !ready(Int16(POLLOUT)) { return 0 }
        let count = access == .guarded ? min(pendingBytes, Int(PIPE_BUF)) : pendingBytes
        while true {
            let n = queue.withUnsafeBytes { b -> Int in
                let p = b.baseAddress! + head
                return access == .socket ? send(fd, p, count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) : Glibc.write(fd, p, count)
            }
            if n >= 0 { return n == 0 ? -1 : n }
            if errno == EINTR { continue }
            if errno == EAGAIN { return 0 }
            return -1
        }
    }

    func ready(_ events: Int16) -> Bool {
        var p = pollfd(fd: fd, events: events, revents: 0)
        return poll(&p, 1, 0) > 0 && p.revents != 0
    }
}
