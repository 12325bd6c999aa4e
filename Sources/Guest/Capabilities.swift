#if canImport(Glibc)
import Glibc
#endif
import CLibcap
import CShims
import OCI

/// Capability names as runc spells them (CAP_ + libcap's name in upper case).
public enum CapabilityNames {
    /// Every capability libcap knows, in number order: what `features` lists.
    public static let known: [String] = {
        var names: [String] = []
        for v in cap_value_t(0)..<64 {
            guard let p = cap_to_name(v) else { break }
            let name = String(cString: p)
            cap_free(p)
            guard name.hasPrefix("cap_") else { break }  // libcap prints unknown values as numbers
            names.append(name.uppercased())
        }
        return names
    }()

    static let values: [String: cap_value_t] = {
        var d: [String: cap_value_t] = [:]
        for (i, n) in known.enumerated() { d[n] = cap_value_t(i) }
        return d
    }()

    public static func value(_ name: String) -> cap_value_t? { values[name] }

    /// Names that are not capabilities libcap knows, sorted and once each: runc warns
    /// "ignoring unknown or unavailable capabilities" about them and carries on.
    public static func unknown(in caps: Process.Capabilities?) -> [String] {
        Array(Set((caps?.allNames ?? []).filter { values[$0] == nil })).sorted()
    }
}

/// process.capabilities as numbers, applied the way runc 1.1 applies them: the bounding set
/// before the user changes (capabilities kept across setuid), then effective, permitted and
/// inheritable at once, then ambient. No capabilities object means no capabilities at all.
/// Names unknown here, or beyond what the running kernel has, are left out.
struct CapabilitySets {
    var bounding: [cap_value_t] = []
    var effective: [cap_value_t] = []
    var inheritable: [cap_value_t] = []
    var permitted: [cap_value_t] = []
    var ambient: [cap_value_t] = []

    init(_ c: Process.Capabilities?) {
        guard let c else { return }
        let last = cap_max_bits()  // how many the kernel has
        func resolve(_ names: [String]) -> [cap_value_t] {
            names.compactMap { CapabilityNames.value($0) }.filter { $0 < last }
        }
        bounding = resolve(c.bounding); effective = resolve(c.effective)
        inheritable = resolve(c.inheritable); permitted = resolve(c.permitted); ambient = resolve(c.ambient)
    }

    /// Drops what is not in the bounding set; only possible (and only tried, as runc
    /// does) while CAP_SETPCAP is effective.
    func applyBounding() throws(SetupError) {
        guard let current = cap_get_proc() else { throw .sys("read capabilities") }
        var setpcap = CAP_CLEAR
        cap_get_flag(current, cap_value_t(CAP_SETPCAP), CAP_EFFECTIVE, &setpcap)
        cap_free(UnsafeMutableRawPointer(current))
        guard setpcap == CAP_SET else { return }
        for v in 0..<cap_max_bits() where !bounding.contains(v) {
            if cap_drop_bound(v) != 0 && errno != EINVAL { throw .sys("drop \(name(v)) from the bounding set") }
        }
    }

    /// Sets effective, permitted and inheritable exactly, then raises the ambient ones.
    /// runc 1.1 ignores failed ambient raises (a capability must also be permitted and
    /// inheritable to be ambient), so a spec with ambient but no inheritable runs without them.
    func apply() throws(SetupError) {
        guard let c = cap_init() else { throw .sys("allocate capability state") }
        defer { cap_free(UnsafeMutableRawPointer(c)) }
        for (flag, values) in [(CAP_EFFECTIVE, effective), (CAP_PERMITTED, permitted), (CAP_INHERITABLE, inheritable)]
        where !values.isEmpty {
            var v = values
            if cap_set_flag(c, flag, Int32(v.count), &v, CAP_SET) != 0 { throw .sys("set capability flags") }
        }
        if cap_set_proc(c) != 0 { throw .sys("apply capabilities") }
        _ = cap_reset_ambient()
        for v in ambient { _ = cap_set_ambient(v, CAP_SET) }
    }

    func name(_ v: cap_value_t) -> String {
        Int(v) < CapabilityNames.known.count ? CapabilityNames.known[Int(v)] : "capability \(v)"
    }
}
