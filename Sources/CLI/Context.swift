#if canImport(Glibc)
import Glibc
#endif
import Agent
import HostRuntime

/// Global flags and what every command shares.
struct Context {
    var root = StateStore.defaultRoot
    var logPath: String?
    var logFormat = Logger.Format.text
    var debug = false
    var systemdCgroup = false
    var logger: Logger
    var store: StateStore { StateStore(root: root) }

    init() { logger = Logger(path: nil, format: .text, debug: false) }

    /// Global flags re-passed to the keeper so it logs where the caller asked.
    var globalArguments: [String] {
        var a = ["--root", root]
        if let l = logPath { a += ["--log", l, "--log-format", logFormat.rawValue] }
        if debug { a.append("--debug") }
        return a
    }

    func configuration() throws(RuntimeError) -> Configuration {
        do { return try Configuration.load() } catch { throw RuntimeError(error.description) }
    }

    static func selfExecutable() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, 4095)
        return n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }
}
