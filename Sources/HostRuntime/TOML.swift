/// The subset of TOML our configuration file uses: [tables], key = string | integer |
/// boolean | [array of strings], comments. Errors name the line.
public enum TOMLValue: Equatable {
    case string(String), integer(Int), bool(Bool), strings([String])
}

public struct TOMLError: Error, CustomStringConvertible {
    public let description: String
}

public enum TOML {
    /// Parses into "table.key" → value.
    public static func parse(_ text: String, file: String) throws(TOMLError) -> [String: TOMLValue] {
        var out: [String: TOMLValue] = [:]
        var table = ""
        // Split on bytes: in Swift "\r\n" is one Character, which a split on "\n" would miss.
        let lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (i, raw) in lines.enumerated() {
            let line = stripComment(String(decoding: raw, as: UTF8.self)).trimmed
            if line.isEmpty { continue }
            let fail = { (m: String) in TOMLError(description: "\(file):\(i + 1): \(m)") }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw fail("unterminated table header") }
                table = String(line.dropFirst().dropLast()).trimmed
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw fail("expected key = value") }
            let key = String(line[..<eq]).trimmed
            let val = String(line[line.index(after: eq)...]).trimmed
            guard !key.isEmpty else { throw fail("empty key") }
            guard let v = value(val) else { throw fail("cannot read value for \(key): \(val)") }
            out[table.isEmpty ? key : table + "." + key] = v
        }
        return out
    }

    /// Cuts a trailing comment; a '#' inside "basic" (with \ escapes) or 'literal' strings stays.
    static func stripComment(_ s: String) -> String {
        var quote: Character? = nil
        var escaped = false
        for (i, c) in s.enumerated() {
            if escaped { escaped = false; continue }
            if let q = quote {
                if c == "\\" && q == "\"" { escaped = true } else if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "#" {
                return String(s.prefix(i))
            }
        }
        return s
    }

    /// Splits an array body on the commas that are outside quotes.
    static func splitItems(_ s: String) -> [String]? {
        var items: [String] = []
        var cur = ""
        var quote: Character? = nil
        var escaped = false
        for c in s {
            if escaped { escaped = false; cur.append(c); continue }
            if let q = quote {
                if c == "\\" && q == "\"" { escaped = true } else if c == q { quote = nil }
                cur.append(c)
            } else if c == "," {
                items.append(cur); cur = ""
            } else {
                if c == "\"" || c == "'" { quote = c }
                cur.append(c)
            }
        }
        if quote != nil { return nil }
        items.append(cur)
        return items
    }

    static func value(_ s: String) -> TOMLValue? {
        if s == "true" { return .bool(true) }
        if s == "false" { return .bool(false) }
        if let i = Int(s.filter { $0 != "_" }) { return .integer(i) }
        if let str = unquote(s) { return .string(str) }
        if s.hasPrefix("[") && s.hasSuffix("]") {
            let inner = s.dropFirst().dropLast().trimmed
            if inner.isEmpty { return .strings([]) }
            var items: [String] = []
            guard let parts = splitItems(inner) else { return nil }
            for part in parts {
                let p = part.trimmed
                if p.isEmpty { continue }
                guard let u = unquote(p) else { return nil }
                items.append(u)
            }
            return .strings(items)
        }
        return nil
    }

    static func unquote(_ s: String) -> String? {
        guard s.count >= 2, s.first == s.last, s.first == "\"" || s.first == "'" else { return nil }
        var out = ""
        var esc = false
        for c in s.dropFirst().dropLast() {
            if esc { out.append(c == "n" ? "\n" : c == "t" ? "\t" : c); esc = false }
            else if c == "\\" && s.first == "\"" { esc = true }
            else { out.append(c) }
        }
        return out
    }
}

extension StringProtocol {
    var trimmed: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
