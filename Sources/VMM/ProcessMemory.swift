#if canImport(Glibc)
import Glibc
#endif

/// This process's resident memory, from /proc/self/status.
public enum ProcessMemory {
    /// VmRSS in bytes (0 if unreadable).
    public static func residentBytes() -> Int { statusField("VmRSS:") }

    /// A "Name:   N kB" field of /proc/self/status, in bytes.
    public static func statusField(_ name: String) -> Int {
        guard let f = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), f) != nil {
            let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard s.hasPrefix(name) else { continue }
            let digits = s.dropFirst(name.count).filter { $0.isNumber }
            return (Int(String(digits)) ?? 0) * 1024
        }
        return 0
    }
}
