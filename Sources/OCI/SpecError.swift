/// A config.json problem, named by its JSON path so a user can find it.
public struct SpecError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Typed access into a JSON tree that reports the path of whatever is wrong.
struct Field {
    let value: JSON?
    let path: String

    init(_ value: JSON?, _ path: String) { self.value = value; self.path = path }

    subscript(key: String) -> Field { Field(value?[key], path.isEmpty ? key : path + "." + key) }
    var present: Bool { if let v = value, !v.isNull { return true }; return false }

    func wrongType(_ want: String) -> SpecError {
        SpecError("\(path): expected \(want), got \(value?.typeName ?? "nothing")")
    }
    func string() throws(SpecError) -> String? {
        guard present else { return nil }
        guard let s = value!.string else { throw wrongType("string") }
        return s
    }
    func requiredString() throws(SpecError) -> String {
        guard let s = try string() else { throw SpecError("\(path) is required") }
        return s
    }
    func bool() throws(SpecError) -> Bool? {
        guard present else { return nil }
        guard let b = value!.bool else { throw wrongType("boolean") }
        return b
    }
    func int64() throws(SpecError) -> Int64? {
        guard present else { return nil }
        guard let n = value!.int64 else { throw wrongType("integer") }
        return n
    }
    func uint32() throws(SpecError) -> UInt32? {
        guard let n = try int64() else { return nil }
        guard let u = UInt32(exactly: n) else { throw SpecError("\(path): \(n) is out of range") }
        return u
    }
    func uint64() throws(SpecError) -> UInt64? {
        guard present else { return nil }
        if let u = value!.uint64 { return u }
        if let d = value!.double, d >= 0, d < 1.8e19 { return UInt64(d) }
        throw wrongType("unsigned integer")
    }
    func array() throws(SpecError) -> [Field] {
        guard present else { return [] }
        guard let a = value!.array else { throw wrongType("array") }
        return a.enumerated().map { Field($1, "\(path)[\($0)]") }
    }
    func strings() throws(SpecError) -> [String] {
        var out: [String] = []
        for f in try array() { out.append(try f.requiredString()) }
        return out
    }
    func stringMap() throws(SpecError) -> [String: String] {
        guard present else { return [:] }
        guard let pairs = value!.objectPairs else { throw wrongType("object") }
        var d: [String: String] = [:]
        for (k, v) in pairs {
            guard let s = v.string else { throw Field(v, path + "." + k).wrongType("string") }
            d[k] = s
        }
        return d
    }
    func object() throws(SpecError) -> JSON? {
        guard present else { return nil }
        guard value!.objectPairs != nil else { throw wrongType("object") }
        return value
    }
}
