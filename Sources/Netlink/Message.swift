#if canImport(Glibc)
import Glibc
#endif

/// rtnetlink messages: building requests and reading the kernel's replies (netlink(7),
/// rtnetlink(7)). Everything is host byte order except where a comment says otherwise.
public struct NetlinkError: Error, CustomStringConvertible, Sendable, Equatable {
    public let what: String
    /// errno, positive; 0 for a malformed reply.
    public let code: Int32
    /// The kernel's extended-ack text, when it gave one.
    public let detail: String
    public init(_ what: String, code: Int32, detail: String = "") { self.what = what; self.code = code; self.detail = detail }
    public var description: String {
        let reason = code == 0 ? "malformed netlink reply" : errnoText(code)
        return "\(what): \(reason)" + (detail.isEmpty ? "" : " (\(detail))")
    }
}

/// A request under construction: header, the family's fixed struct, then attributes.
public struct NetlinkRequest: Equatable, Sendable {
    public private(set) var bytes: [UInt8]
    var nests: [Int] = []

    public init(type: UInt16, flags: UInt16) {
        bytes = []
        u32(0)  // nlmsg_len, set by finish
        u16(type); u16(flags | NL.request)
        u32(0); u32(0)  // seq, pid
    }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func pad() { while bytes.count % 4 != 0 { bytes.append(0) } }

    /// struct ifinfomsg.
    public mutating func ifinfo(family: UInt8 = 0, index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) {
        u8(family); u8(0); u16(0); i32(index); u32(flags); u32(change)
    }
    /// struct ifaddrmsg.
    public mutating func ifaddr(family: UInt8, prefix: UInt8, flags: UInt8 = 0, scope: UInt8 = 0, index: Int32) {
        u8(family); u8(prefix); u8(flags); u8(scope); i32(index)
    }
    /// struct rtmsg.
    public mutating func rtmsg(family: UInt8, dstLen: UInt8 = 0, table: UInt8 = 0, proto: UInt8 = 0,
                               scope: UInt8 = 0, type: UInt8 = 0) {
        u8(family); u8(dstLen); u8(0); u8(0); u8(table); u8(proto); u8(scope); u8(type); u32(0)
    }
    /// struct tcmsg.
    public mutating func tcmsg(index: Int32, handle: UInt32, parent: UInt32, info: UInt32 = 0) {
        u8(0); u8(0); u16(0); i32(index); u32(handle); u32(parent); u32(info)
    }

    public mutating func attr(_ type: UInt16, _ data: [UInt8]) {
        u16(UInt16(4 + data.count)); u16(type)
        bytes.append(contentsOf: data)
        pad()
    }
    public mutating func attr(_ type: UInt16, u32 v: UInt32) { attr(type, withUnsafeBytes(of: v.littleEndian) { Array($0) }) }
    /// A NUL-terminated string attribute.
    public mutating func attr(_ type: UInt16, string s: String) { attr(type, Array(s.utf8) + [0]) }

    /// Opens a nested attribute; close it with `end()`.
    public mutating func begin(_ type: UInt16) {
        nests.append(bytes.count)
        u16(0); u16(type | NL.nested)
    }
    public mutating func end() {
        let at = nests.removeLast()
        let len = UInt16(bytes.count - at)
        bytes[at] = UInt8(len & 0xff); bytes[at + 1] = UInt8(len >> 8)
    }

    /// The message with its length and sequence number filled in.
    public func finish(seq: UInt32) -> [UInt8] {
        precondition(nests.isEmpty, "unclosed nested attribute")
        var b = bytes
        withUnsafeBytes(of: UInt32(b.count).littleEndian) { for i in 0..<4 { b[i] = $0[i] } }
        withUnsafeBytes(of: seq.littleEndian) { for i in 0..<4 { b[8 + i] = $0[i] } }
        return b
    }
}

/// One message of a reply.
public struct NetlinkReply: Sendable {
    public var type: UInt16
    public var flags: UInt16
    public var seq: UInt32
    /// Everything after the 16-byte header.
    public var payload: ArraySlice<UInt8>

    /// Splits a datagram into messages; a length that runs past the end is an error.
    public static func split(_ b: [UInt8]) throws(NetlinkError) -> [NetlinkReply] {
        var out: [NetlinkReply] = []
        var at = 0
        while b.count - at >= 16 {
            let len = Int(le32(b, at))
            guard len >= 16, at + len <= b.count else { throw NetlinkError("netlink reply", code: 0) }
            out.append(NetlinkReply(type: le16(b, at + 4), flags: le16(b, at + 6), seq: le32(b, at + 8),
                                    payload: b[(at + 16)..<(at + len)]))
            at += (len + 3) & ~3
        }
        return out
    }

    /// For NLMSG_ERROR: the errno (0 is an ack) and the extended-ack message, if any.
    public func errorCode() -> (code: Int32, message: String) {
        let p = payload
        guard p.count >= 4 else { return (0, "") }
        let code = -Int32(bitPattern: le32(p, p.startIndex))
        // NLM_F_ACK_TLVS: attributes follow the echoed request (just its header when capped).
        guard flags & 0x200 != 0, p.count >= 20 else { return (code, "") }
        var skip = 4 + 16
        if flags & 0x100 == 0 { skip = 4 + Int(le32(p, p.startIndex + 4)) }
        guard skip <= p.count else { return (code, "") }
        let attrs = Attributes(p.dropFirst(skip))
        return (code, attrs.string(1) ?? "")
    }
}

/// The attributes of a message (or of a nested attribute), by type; unknown ones are ignored.
public struct Attributes: Sendable {
    var table: [UInt16: ArraySlice<UInt8>] = [:]

    public init(_ b: ArraySlice<UInt8>) {
        var at = b.startIndex
        while b.endIndex - at >= 4 {
            let len = Int(le16(b, at)), type = le16(b, at + 2) & 0x3fff
            guard len >= 4, at + len <= b.endIndex else { break }
            if table[type] == nil { table[type] = b[(at + 4)..<(at + len)] }
            at += (len + 3) & ~3
        }
    }

    public subscript(_ type: UInt16) -> ArraySlice<UInt8>? { table[type] }
    public func bytes(_ type: UInt16) -> [UInt8]? { table[type].map(Array.init) }
    public func u32(_ type: UInt16) -> UInt32? {
        guard let v = table[type], v.count >= 4 else { return nil }
        return le32(v, v.startIndex)
    }
    public func string(_ type: UInt16) -> String? {
        guard let v = table[type] else { return nil }
        return String(decoding: v.prefix { $0 != 0 }, as: UTF8.self)
    }
    public func nested(_ type: UInt16) -> Attributes? { table[type].map(Attributes.init) }
}

func le16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
func le16(_ b: ArraySlice<UInt8>, _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
func le32(_ b: [UInt8], _ i: Int) -> UInt32 { UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24 }
func le32(_ b: ArraySlice<UInt8>, _ i: Int) -> UInt32 {
    UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}

func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }
