/// A parsed JSON document. Numbers keep their source text so 64-bit integers survive.
public enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSON])
    case object([String: JSON], keys: [String])

    public static func object(_ pairs: [(String, JSON)]) -> JSON {
        var d: [String: JSON] = [:]
        var keys: [String] = []
        for (k, v) in pairs {
            if d.updateValue(v, forKey: k) == nil { keys.append(k) }
        }
        return .object(d, keys: keys)
    }

    public subscript(key: String) -> JSON? {
        if case .object(let d, _) = self { return d[key] }
        return nil
    }

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var int64: Int64? { if case .number(let n) = self { return Int64(n) }; return nil }
    public var uint64: UInt64? { if case .number(let n) = self { return UInt64(n) }; return nil }
    public var double: Double? { if case .number(let n) = self { return Double(n) }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }
    public var objectPairs: [(String, JSON)]? {
        if case .object(let d, let keys) = self { return keys.map { ($0, d[$0]!) } }
        return nil
    }
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

extension JSON {
    /// A copy of this object with `key` set (replaced in place, or appended).
    public func setting(_ key: String, _ value: JSON) -> JSON {
        var pairs = objectPairs ?? []
        if let i = pairs.firstIndex(where: { $0.0 == key }) { pairs[i].1 = value } else { pairs.append((key, value)) }
        return .object(pairs)
    }
}
