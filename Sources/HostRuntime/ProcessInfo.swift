#if canImport(Glibc)
import Glibc
#endif
import Agent

/// Host process facts read from /proc.
public enum ProcessInfo {
    /// Field 22 of /proc/PID/stat (start time in clock ticks) and the state letter.
    public static func stat(_ pid: Int32) -> (state: Character, startTime: UInt64)? {
        guard pid > 0, let bytes = try? Posix.readFile("/proc/\(pid)/stat") else { return nil }
        let s = String(decoding: bytes, as: UTF8.self)
        guard let close = s.lastIndex(of: ")") else { return nil }
        let fields = s[s.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let st = fields[0].first, let start = UInt64(fields[19]) else { return nil }
        return (st, start)
    }

    /// True when `pid` is the same live (not zombie) process that started at `startTime`.
    public static func isAlive(_ pid: Int32, startTime: UInt64) -> Bool {
        guard let s = stat(pid) else { return false }
        return s.state != "Z" && s.state != "X" && (startTime == 0 || s.startTime == startTime)
    }
}
