#if canImport(Glibc)
import Glibc
#endif

/// CLOCK_MONOTONIC and CLOCK_REALTIME in nanoseconds.
public enum Clock {
    public static func monotonic() -> UInt64 { read(CLOCK_MONOTONIC) }
    public static func realtime() -> UInt64 { read(CLOCK_REALTIME) }

    static func read(_ id: clockid_t) -> UInt64 {
        var ts = timespec()
        clock_gettime(id, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
