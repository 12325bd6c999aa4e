#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 with nanoseconds in UTC, the way Go prints time.Time in runc's JSON.
public enum Timestamp {
    public static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        var ns = String(ts.tv_nsec)
        ns = String(repeating: "0", count: 9 - ns.count) + ns
        while ns.hasSuffix("0") { ns.removeLast() }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T" +
            "\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2))" + (ns.isEmpty ? "" : "." + ns) + "Z"
    }
}
