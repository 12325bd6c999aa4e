import OCI
#if canImport(Glibc)
import Glibc
#endif

/// Boots a 19-byte 64-bit guest through the built-in VMM and reports whether it ran and how
/// long each phase took: the real probe behind `kata-runtime check` and the benchmark
/// (scripts/bench/vmm-tiny-guest.sh). Needs no files: the program is below.
public enum TinyGuestProbe {
    /// mov $0x3f8,%dx; mov $'o',%al; out %al,(%dx); mov $'k',%al; out; mov $'\n',%al; out;
    /// xor %eax,%eax; out %al,$0xf4 (debug exit, status 0); jmp .
    public static let program: [UInt8] = [
        0x66, 0xba, 0xf8, 0x03, 0xb0, 0x6f, 0xee, 0xb0, 0x6b, 0xee, 0xb0, 0x0a, 0xee,
        0x31, 0xc0, 0xe6, 0xf4, 0xeb, 0xfe,
    ]
    public static let expectedOutput = "ok\n"

    public struct Report: Sendable {
        /// The guest printed "ok" and exited with status 0.
        public var ran = false
        public var stop = ""
        public var serialOutput = ""
        public var error: String?
        /// /dev/kvm open to vCPU ready (VM, irqchip, memory, vCPU, CPUID, registers).
        public var setupNanoseconds: UInt64 = 0
        /// KVM_RUN entered to the first exit (the first serial byte).
        public var firstExitNanoseconds: UInt64 = 0
        /// /dev/kvm open to the guest's exit.
        public var totalNanoseconds: UInt64 = 0
        /// CLOCK_REALTIME at the first guest exit, for measuring from an outside process start.
        public var firstExitRealtime: UInt64 = 0
        public var exits = 0
        public var guestMemoryBytes = 0
        /// Measured with the VM still alive.
        public var processRSSBytes = 0
        public var guestResidentBytes = 0
        public var pvm = Kvm.isPVM

        public var vmmRSSBeyondGuest: Int { max(0, processRSSBytes - guestResidentBytes) }

        /// One line for `kata-runtime check`.
        public var text: String {
            if let error { return "built-in VMM probe: FAILED: \(error)" }
            let ms = { (ns: UInt64) in fmtMillis(ns) }
            return "built-in VMM probe: \(ran ? "ran" : "FAILED (\(stop))"): tiny guest exited after \(ms(totalNanoseconds)) ms "
                + "(setup \(ms(setupNanoseconds)) ms, first exit \(ms(firstExitNanoseconds)) ms, \(exits) exits)"
                + (pvm ? "; /dev/kvm is PVM: small guests only" : "")
        }

        /// A flat JSON object for `check --json` and the benchmark.
        public var json: String {
            let q = JSONWriter.quote
            let fields: [(String, String)] = [
                ("ran", ran ? "true" : "false"), ("stop", q(stop)), ("error", error.map(q) ?? "null"),
                ("serial_output", q(serialOutput)), ("setup_ns", "\(setupNanoseconds)"),
                ("first_exit_ns", "\(firstExitNanoseconds)"), ("total_ns", "\(totalNanoseconds)"),
                ("first_exit_realtime_ns", "\(firstExitRealtime)"), ("exits", "\(exits)"),
                ("guest_memory_bytes", "\(guestMemoryBytes)"), ("process_rss_bytes", "\(processRSSBytes)"),
                ("guest_resident_bytes", "\(guestResidentBytes)"), ("vmm_rss_beyond_guest_bytes", "\(vmmRSSBeyondGuest)"),
                ("pvm", pvm ? "true" : "false"),
            ]
            return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        }
    }

    static func fmtMillis(_ ns: UInt64) -> String {
        let us = ns / 1000
        let frac = String(us % 1000)
        return "\(us / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
    }

    /// Runs the probe on the calling thread. Never throws: failures are in `Report.error`.
    public static func run(memorySize: Int = 2 << 20, timeoutMilliseconds: Int = 2000) -> Report {
        var report = Report()
        report.guestMemoryBytes = memorySize
        let t0 = Clock.monotonic()
        do {
            var options = MicroVM.Options()
            options.memorySize = memorySize
            let vm = try MicroVM(options: options)
            try vm.load(program)
            try vm.enterLongMode()
            let t1 = Clock.monotonic()
            let stop = try vm.run(timeoutNanoseconds: UInt64(timeoutMilliseconds) * 1_000_000)
            let t2 = Clock.monotonic()
            let first = vm.firstExitAt ?? t2
            report.firstExitRealtime = Clock.realtime() - (t2 - first)
            report.setupNanoseconds = t1 - t0
            report.firstExitNanoseconds = first - t1
            report.totalNanoseconds = t2 - t0
            report.exits = vm.exitCount
            report.serialOutput = vm.serial.outputString
            report.stop = stop.description
            report.ran = stop.isClean && report.serialOutput == expectedOutput
            report.processRSSBytes = ProcessMemory.residentBytes()
            report.guestResidentBytes = vm.memory.residentBytes()
        } catch {
            report.error = error.description
        }
        return report
    }

    /// Entry point for a hidden CLI command: runs the probe once, prints the report as JSON
    /// (`--text` for the one-line form) and returns the exit status (0 when the guest ran).
    public static func commandMain(_ arguments: [String]) -> Int32 {
        let r = run()
        print(arguments.contains("--text") ? r.text : r.json)
        return r.ran ? 0 : 1
    }
}
