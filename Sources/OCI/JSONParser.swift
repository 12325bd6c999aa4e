import CYajl

/// A JSON syntax error with the line and column where the parser stopped.
public struct JSONSyntaxError: Error, CustomStringConvertible, Sendable {
    public let line: Int
    public let column: Int
    public let reason: String
    public var description: String { "invalid JSON at line \(line), column \(column): \(reason)" }
}

/// Builds a `JSON` tree from yajl's streaming callbacks.
private final class TreeBuilder {
    enum Frame { case array([JSON]); case object([(String, JSON)], pendingKey: String?) }
    var stack: [Frame] = []
    var root: JSON?

    func add(_ v: JSON) {
        guard let top = stack.popLast() else { root = v; return }
        switch top {
        case .array(var a): a.append(v); stack.append(.array(a))
        case .object(var pairs, let key): pairs.append((key ?? "", v)); stack.append(.object(pairs, pendingKey: nil))
        }
    }
    func setKey(_ k: String) {
        if case .object(let pairs, _) = stack.popLast()! { stack.append(.object(pairs, pendingKey: k)) }
    }
    func close() {
        switch stack.popLast()! {
        case .array(let a): add(.array(a))
        case .object(let pairs, _): add(.object(pairs))
        }
    }
}

private func builder(_ ctx: UnsafeMutableRawPointer?) -> TreeBuilder {
    Unmanaged<TreeBuilder>.fromOpaque(ctx!).takeUnretainedValue()
}
private func str(_ p: UnsafePointer<UInt8>?, _ n: Int) -> String {
    String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
}

private let callbacks: yajl_callbacks = {
    var c = yajl_callbacks()
    c.yajl_null = { ctx in builder(ctx).add(.null); return 1 }
    c.yajl_boolean = { ctx, b in builder(ctx).add(.bool(b != 0)); return 1 }
    c.yajl_number = { ctx, p, n in
        builder(ctx).add(.number(String(decoding: UnsafeRawBufferPointer(start: p, count: Int(n)), as: UTF8.self)))
        return 1
    }
    c.yajl_string = { ctx, p, n in builder(ctx).add(.string(str(p, Int(n)))); return 1 }
    c.yajl_start_map = { ctx in builder(ctx).stack.append(.object([], pendingKey: nil)); return 1 }
    c.yajl_map_key = { ctx, p, n in builder(ctx).setKey(str(p, Int(n))); return 1 }
    c.yajl_end_map = { ctx in builder(ctx).close(); return 1 }
    c.yajl_start_array = { ctx in builder(ctx).stack.append(.array([])); return 1 }
    c.yajl_end_array = { ctx in builder(ctx).close(); return 1 }
    return c
}()

public enum JSONParser {
    /// Parses one JSON document; errors name the line and column.
    public static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSON {
        let b = TreeBuilder()
        let ctx = Unmanaged.passUnretained(b).toOpaque()
        var cbs = callbacks
        guard let h = yajl_alloc(&cbs, nil, ctx) else {
            throw JSONSyntaxError(line: 0, column: 0, reason: "out of memory")
        }
        defer { yajl_free(h) }
        var status = bytes.withUnsafeBufferPointer { yajl_parse(h, $0.baseAddress, $0.count) }
        var consumed = Int(yajl_get_bytes_consumed(h))
        if status == yajl_status_ok {
            status = yajl_complete_parse(h)
            consumed = bytes.count
        }
        withExtendedLifetime(b) {}
        if status != yajl_status_ok {
            let msgPtr = bytes.withUnsafeBufferPointer { yajl_get_error(h, 0, $0.baseAddress, $0.count) }
            var reason = msgPtr.map { String(cString: $0) } ?? "parse error"
            if let m = msgPtr { yajl_free_error(h, m) }
            reason = reason.split(separator: "\n").first.map(String.init) ?? reason
            var offset = Swift.min(consumed, bytes.count)
            if reason.hasPrefix("parse error: ") {
                reason.removeFirst("parse error: ".count)
                offset = Swift.max(0, offset - 1)  // yajl has consumed the offending byte
            }
            if reason.hasPrefix("lexical error: ") { reason.removeFirst("lexical error: ".count) }
            while reason.hasSuffix(".") || reason.hasSuffix(" ") { reason.removeLast() }
            let (line, col) = position(bytes, offset)
            throw JSONSyntaxError(line: line, column: col, reason: reason)
        }
        guard let root = b.root else { throw JSONSyntaxError(line: 1, column: 1, reason: "empty document") }
        return root
    }

    public static func parse(_ s: String) throws(JSONSyntaxError) -> JSON { try parse(Array(s.utf8)) }

    static func position(_ bytes: [UInt8], _ offset: Int) -> (Int, Int) {
        var line = 1, col = 1
        for i in 0..<offset {
            if bytes[i] == UInt8(ascii: "\n") { line += 1; col = 1 } else { col += 1 }
        }
        return (line, col)
    }
}
