/// A user-facing failure: one line, and the exit status runc would use.
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public let exitCode: Int32
    public init(_ d: String, exitCode: Int32 = 1) { description = d; self.exitCode = exitCode }
}
