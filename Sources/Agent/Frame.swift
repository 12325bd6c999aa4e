/// One unit on the agent channel: [u32 length][u8 kind][u32 stream][payload].
/// `length` counts kind + stream + payload. Streams multiplex processes; stream 0 is control.
public struct Frame: Equatable, Sendable {
    public enum Kind: UInt8, Sendable {
        case request = 1    // payload: u32 id, Request
        case response = 2   // payload: u32 id, u8 ok, string error | body
        case data = 3       // payload: u8 fd, bytes
        case eof = 4        // payload: u8 fd
        case credit = 5     // payload: u8 fd, u32 bytes the receiver has drained
        case exit = 6       // payload: i32 wait status
        case ready = 7      // guest agent is up; payload: string kernel release
        case log = 8        // payload: string (guest diagnostics)
        case shut = 9       // payload: u8 fd; the receiver of this direction went away: stop sending
    }
    public var kind: Kind
    public var stream: UInt32
    public var payload: [UInt8]

    public init(_ kind: Kind, stream: UInt32 = 0, payload: [UInt8] = []) {
        self.kind = kind; self.stream = stream; self.payload = payload
    }

    public static let headerSize = 9
    /// A frame larger than this is a protocol violation, not a big message.
    public static let maxPayload = 4 << 20

    public func encoded() -> [UInt8] {
        var w = WireWriter()
        w.u32(UInt32(5 + payload.count))
        w.u8(kind.rawValue)
        w.u32(stream)
        var out = w.bytes
        out.append(contentsOf: payload)
        return out
    }
}

/// Turns a byte stream into frames, however the bytes were split.
public struct FrameDecoder {
    var buffer: [UInt8] = []
    var start = 0
    public init() {}

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) { buffer.append(contentsOf: bytes) }
    public mutating func feed(_ bytes: [UInt8]) { buffer.append(contentsOf: bytes) }

    /// The next complete frame, nil when more bytes are needed.
    public mutating func next() throws(WireError) -> Frame? {
        let avail = buffer.count - start
        guard avail >= 4 else { compact(); return nil }
        var r = WireReader(buffer, at: start)
        let len = Int(try r.u32())
        guard len >= 5, len - 5 <= Frame.maxPayload else { throw WireError("bad frame length \(len)") }
        guard avail >= 4 + len else { compact(); return nil }
        let raw = try r.u8()
        guard let kind = Frame.Kind(rawValue: raw) else { throw WireError("unknown frame kind \(raw)") }
        let stream = try r.u32()
        let payload = Array(buffer[(start + Frame.headerSize)..<(start + 4 + len)])
        start += 4 + len
        return Frame(kind, stream: stream, payload: payload)
    }

    mutating func compact() {
        if start > 0 { buffer.removeFirst(start); start = 0 }
    }
}
