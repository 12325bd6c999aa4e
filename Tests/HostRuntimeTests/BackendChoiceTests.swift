import XCTest
import Hypervisor

/// `auto` picks the built-in VMM only on VT-x/AMD-V with its KVM module and a usable /dev/kvm
/// (issue 3); these host facts are injected, so every case runs on any machine.
final class BackendChoiceTests: XCTestCase {
    typealias Probe = Accelerator.Probe
    let amd = Probe(kvmDevice: true, virtFlag: "svm", kvmModule: "kvm_amd", pvm: false)
    let intel = Probe(kvmDevice: true, virtFlag: "vmx", kvmModule: "kvm_intel", pvm: false)

    func testAutoPicksTheBuiltinVMMOnHardwareVirtualization() {
        for host in [amd, intel] {
            let c = BackendChoice.decide(configured: "auto", host: host)
            XCTAssertEqual(c.backend, .builtin)
            XCTAssertTrue(c.reason.hasPrefix("auto: hardware virtualization: \(host.virtFlag!), \(host.kvmModule!) loaded"), c.reason)
        }
    }

    func testAutoPicksQEMUOtherwiseAndSaysWhy() {
        let cases: [(Probe, String)] = [
            // This CI machine: PVM, no vmx/svm flag.
            (Probe(kvmDevice: true, virtFlag: nil, kvmModule: nil, pvm: true), "PVM"),
            // PVM wins even if a flag and a module were somehow present.
            (Probe(kvmDevice: true, virtFlag: "svm", kvmModule: "kvm_amd", pvm: true), "PVM"),
            (Probe(kvmDevice: false, virtFlag: "svm", kvmModule: "kvm_amd", pvm: false), "/dev/kvm is missing"),
            (Probe(kvmDevice: true, virtFlag: nil, kvmModule: "kvm_amd", pvm: false), "no vmx/svm"),
            (Probe(kvmDevice: true, virtFlag: "vmx", kvmModule: nil, pvm: false), "neither kvm_intel nor kvm_amd"),
        ]
        for (host, why) in cases {
            let c = BackendChoice.decide(configured: "auto", host: host)
            XCTAssertEqual(c.backend, .qemu, "\(host)")
            XCTAssertTrue(c.reason.hasPrefix("auto: ") && c.reason.contains(why), c.reason)
            XCTAssertFalse(host.usable)
        }
    }

    func testNetworkInterfacesDoNotChangeTheChoice() {
        // Docker's default bridge on a VT-x/AMD-V host runs on the built-in VMM (it has virtio-net);
        // on PVM it runs on QEMU like every container. The choice depends on the host only.
        let pvm = Probe(kvmDevice: true, virtFlag: nil, kvmModule: nil, pvm: true)
        for (host, backend) in [(amd, BackendChoice.Backend.builtin), (intel, .builtin), (pvm, .qemu)] {
            let c = BackendChoice.decide(configured: "auto", host: host)
            XCTAssertEqual(c.backend, backend, "\(host)")
            XCTAssertFalse(c.reason.contains("network"), c.reason)
        }
    }

    func testAnExplicitBackendIsTakenAsGiven() {
        let pvm = Probe(kvmDevice: true, virtFlag: nil, kvmModule: nil, pvm: true)
        XCTAssertEqual(BackendChoice.decide(configured: "qemu", host: amd), BackendChoice(backend: .qemu, reason: "configured"))
        XCTAssertEqual(BackendChoice.decide(configured: "builtin", host: pvm), BackendChoice(backend: .builtin, reason: "configured"))
    }

    func testVirtualizationFlagFromCPUInfo() {
        let amdInfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme svm npt lbrv\nbugs\t\t: sysret_ss_attrs\n"
        XCTAssertEqual(Accelerator.virtualizationFlag(cpuinfo: amdInfo), "svm")
        XCTAssertEqual(Accelerator.virtualizationFlag(cpuinfo: "flags\t\t: fpu vmx ept\n"), "vmx")
        // Only whole words count: "svm_lock"-like names and other lines do not.
        XCTAssertNil(Accelerator.virtualizationFlag(cpuinfo: "flags\t\t: fpu svm_lock vmxe\nsvm\n"))
        // This host's real flags line (PVM guest: hypervisor, no vmx/svm).
        XCTAssertNil(Accelerator.virtualizationFlag(cpuinfo: "flags\t\t: fpu vme de pse tsc msr pae hypervisor lahf_lm\n"))
        XCTAssertNil(Accelerator.virtualizationFlag(cpuinfo: ""))
    }
}
