#if canImport(Glibc)
import Glibc
#endif
import OCI

/// runc-compatible logging: `--log FILE --log-format text|json`. containerd reads the
/// JSON lines back ({"level","msg","time"}) to show the real error to the user.
public final class Logger: @unchecked Sendable {
    public enum Format: String { case text, json }
    let fd: Int32
    let format: Format
    public let debugEnabled: Bool

    public init(path: String?, format: Format, debug: Bool) {
        self.format = format
        debugEnabled = debug
        if let p = path, !p.isEmpty {
            fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        } else {
            fd = -1
        }
    }

    public var logFD: Int32 { fd }

    public func error(_ msg: String) { write("error", msg) }
    public func warning(_ msg: String) { write("warning", msg) }
    public func info(_ msg: String) { write("info", msg) }
    public func debug(_ msg: String) { if debugEnabled { write("debug", msg) } }

    func write(_ level: String, _ msg: String) {
        guard fd >= 0 else {
            // Without --log, runc's warnings go to stderr; so do ours.
            if (debugEnabled && level == "debug") || level == "warning" { emit(2, "kata-runtime: \(level): \(msg)\n") }
            return
        }
        let line: String
        switch format {
        case .json:
            line = JSONWriter.write(.object([("level", JSON(level)), ("msg", JSON(msg)), ("time", JSON(Timestamp.now()))])) + "\n"
        case .text:
            line = "time=\"\(Timestamp.now())\" level=\(level) msg=\(JSONWriter.quote(msg))\n"
        }
        emit(fd, line)
    }

    func emit(_ fd: Int32, _ s: String) {
        var bytes = Array(s.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }
}
