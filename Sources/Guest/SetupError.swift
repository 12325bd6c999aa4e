#if canImport(Glibc)
import Glibc
#endif

/// Why the container could not be built; sent to the host as the create error.
public struct SetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
    static func sys(_ what: String) -> SetupError { SetupError("\(what): \(String(cString: strerror(errno)))") }
}
