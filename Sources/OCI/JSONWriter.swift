/// Serialises `JSON` compactly or with runc's two-space indentation.
public enum JSONWriter {
    public static func write(_ v: JSON, pretty: Bool = false) -> String {
        var out = ""
        emit(v, into: &out, pretty: pretty, indent: 0)
        return out
    }

    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&": out += hex(u.value)  // as Go's encoder, so output matches runc's
            default:
                if u.value < 0x20 { out += hex(u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    private static func hex(_ v: UInt32) -> String {
        let h = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - h.count) + h
    }

    private static func emit(_ v: JSON, into out: inout String, pretty: Bool, indent: Int) {
        let nl = pretty ? "\n" + String(repeating: "  ", count: indent + 1) : ""
        let end = pretty ? "\n" + String(repeating: "  ", count: indent) : ""
        switch v {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n
        case .string(let s): out += quote(s)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (i, e) in a.enumerated() {
                if i > 0 { out += "," }
                out += nl
                emit(e, into: &out, pretty: pretty, indent: indent + 1)
            }
            out += end + "]"
        case .object(let d, let keys):
            if keys.isEmpty { out += "{}"; return }
            out += "{"
            for (i, k) in keys.enumerated() {
                if i > 0 { out += "," }
                out += nl + quote(k) + (pretty ? ": " : ":")
                emit(d[k]!, into: &out, pretty: pretty, indent: indent + 1)
            }
            out += end + "}"
        }
    }
}

extension JSON {
    public init(_ s: String) { self = .string(s) }
    public init(_ i: Int) { self = .number(String(i)) }
    public init(_ i: Int64) { self = .number(String(i)) }
    public init(_ i: UInt64) { self = .number(String(i)) }
    public init(_ b: Bool) { self = .bool(b) }
    public init(_ d: [String: String]) {
        self = .object(d.keys.sorted().map { ($0, JSON.string(d[$0]!)) })
    }
}
