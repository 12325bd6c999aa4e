/// runc's command-line grammar: `kata-runtime [global flags] COMMAND [flags] ARGS`.
/// Flags take `--name value`, `--name=value` or Go's single-dash `-name value`.
struct FlagSpec: Sendable {
    let names: [String]
    let takesValue: Bool
    init(_ names: String..., value: Bool = false) { self.names = names; takesValue = value }
}

struct ParsedArgs {
    var values: [String: [String]] = [:]
    var positionals: [String] = []

    func value(_ name: String) -> String? { values[name]?.last }
    func all(_ name: String) -> [String] { values[name] ?? [] }
    func flag(_ name: String) -> Bool {
        guard let v = values[name]?.last else { return false }
        return v != "false" && v != "0"
    }
}

struct UsageError: Error, CustomStringConvertible { let description: String }

enum ArgumentParser {
    /// Parses `args`. With `stopAtPositional`, everything from the first positional on is
    /// positional (exec's process arguments); otherwise flags may follow positionals.
    static func parse(_ args: ArraySlice<String>, specs: [FlagSpec], command: String,
                      stopAtPositional: Bool = false, stopAtCount: Int = Int.max) throws(UsageError) -> ParsedArgs {
        var out = ParsedArgs()
        var i = args.startIndex
        var onlyPositionals = false
        while i < args.endIndex {
            let a = args[i]
            i += 1
            if onlyPositionals || !a.hasPrefix("-") || a == "-" {
                out.positionals.append(a)
                if stopAtPositional || out.positionals.count >= stopAtCount { onlyPositionals = true }
                continue
            }
            if a == "--" { onlyPositionals = true; continue }
            var name = String(a.drop { $0 == "-" })
            var inline: String?
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let spec = specs.first(where: { $0.names.contains(name) }) else {
                throw UsageError(description: "flag provided but not defined: -\(name)" + (command.isEmpty ? "" : " (for \(command))"))
            }
            let key = spec.names[0]
            if spec.takesValue {
                if let v = inline { out.values[key, default: []].append(v) }
                else {
                    guard i < args.endIndex else { throw UsageError(description: "flag needs an argument: -\(name)") }
                    out.values[key, default: []].append(args[i]); i += 1
                }
            } else {
                out.values[key, default: []].append(inline ?? "true")
            }
        }
        return out
    }
}
