#!/usr/bin/env bash
# Built-in VMM benchmark (issue 3): process start to the kernel's "Linux version" banner on the
# serial console, booting the project's guest kernel through /dev/kvm; median of N runs (default 5).
#
# Builds a throwaway static driver around VMM.MicroVM + LinuxLoader from a release build of the
# VMM target (no change to Package.swift). The driver boots the kernel (PVH for a vmlinux, the
# 64-bit protocol for a bzImage or with --linux64), stops the VM when the banner appears and
# prints its timings; "process start" is taken in this shell immediately before the fork.
# On this machine's PVM /dev/kvm the kernel runs in KVM's instruction emulator (docs/vmm.md).
#
# Usage: scripts/bench/vmm-linux-boot.sh [-n RUNS] [--kernel PATH] [--initrd PATH] [--linux64] [--json]
set -euo pipefail

runs=5
kernel=/usr/share/kata-runtime/vmlinux
initrd=/usr/share/kata-runtime/kata-initrd.img
proto=auto
json=0
while [ $# -gt 0 ]; do
    case "$1" in
        -n) runs="$2"; shift 2 ;;
        --kernel) kernel="$2"; shift 2 ;;
        --initrd) initrd="$2"; shift 2 ;;
        --linux64) proto=linux64; shift ;;
        --json) json=1; shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -r "$kernel" ] || { echo "kernel $kernel not found (scripts/guest/build-kernel.sh)" >&2; exit 1; }
[ -r "$initrd" ] || initrd=""

repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d /tmp/vmm-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
scratch="${SCRATCH_PATH:-$repo/.build-vmm}"
echo "building the VMM target (release, scratch $scratch)..." >&2
(cd "$repo" && swift build --scratch-path "$scratch" -c release --target VMM >"$work/build.log" 2>&1) \
    || { cat "$work/build.log" >&2; exit 1; }
rel="$scratch/release"
cat >"$work/main.swift" <<'SWIFT'
import VMM
#if canImport(Glibc)
import Glibc
#endif

let args = CommandLine.arguments
do {
    var options = MicroVM.Options()
    options.memorySize = 256 << 20
    options.pit = true
    if Kvm.isPVM { options.hiddenCPUFeatures = CPUFeature.unavailableToEmulator }
    let t0 = Clock.monotonic()
    let vm = try MicroVM(options: options)
    let t1 = Clock.monotonic()
    var config = LinuxBootConfig(kernelPath: args[1], initrdPath: args[2].isEmpty ? nil : args[2],
                                 commandLine: "console=ttyS0 earlycon=uart8250,io,0x3f8 tsc_early_khz=2000000 panic=-1")
    if args[3] == "linux64" { config.bootProtocol = .linux64 }
    let layout = try vm.loadLinux(config)
    let t2 = Clock.monotonic()
    let banner = Array("Linux version".utf8)
    var window: [UInt8] = []
    var bannerRealtime: UInt64 = 0, bannerMono: UInt64 = 0
    vm.serial.onOutput = { b in
        guard bannerMono == 0 else { return }
        window.append(b)
        if window.count > banner.count { window.removeFirst() }
        if window == banner { bannerMono = Clock.monotonic(); bannerRealtime = Clock.realtime(); vm.kicker.requestStop() }
    }
    let stop = try vm.run(timeoutNanoseconds: 300_000_000_000)
    guard bannerMono != 0 else { print("{\"banner\":false,\"stop\":\"\(stop)\"}"); exit(1) }
    print("{\"banner\":true,\"protocol\":\"\(layout.bootProtocol.rawValue)\",\"setup_ns\":\(t1 - t0),\"load_ns\":\(t2 - t1),\"run_to_banner_ns\":\(bannerMono - t2),\"banner_realtime_ns\":\(bannerRealtime),\"exits\":\(vm.exitCount)}")
} catch {
    print("{\"banner\":false,\"error\":\"\(error)\"}")
    exit(1)
}
SWIFT
swiftc -O -static-executable -module-name vmmlinux "$work/main.swift" \
    -I "$rel/Modules" -Xcc -fmodule-map-file="$rel/CKVM.build/module.modulemap" \
    -Xcc -fmodule-map-file="$rel/CShims.build/module.modulemap" \
    -Xcc -fmodule-map-file="$repo/Sources/CYajl/module.modulemap" \
    -Xcc -I"$repo/Sources/CKVM/include" -Xcc -I"$repo/Sources/CShims/include" \
    "$rel"/VMM.build/*.o "$rel"/CKVM.build/*.o "$rel"/OCI.build/*.o "$rel"/CShims.build/*.o \
    "$rel"/Hypervisor.build/*.o "$rel"/Agent.build/*.o \
    -o "$work/vmm-linux" >"$work/link.log" 2>&1 || { cat "$work/link.log" >&2; exit 1; }

field() { grep -o "\"$1\":[0-9]*" <<<"$2" | head -1 | cut -d: -f2; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
: >"$work/start"; : >"$work/setup"; : >"$work/load"; : >"$work/run"; : >"$work/exits"
for _ in $(seq "$runs"); do
    t0=$EPOCHREALTIME
    out="$("$work/vmm-linux" "$kernel" "$initrd" "$proto")" || { echo "boot failed: $out" >&2; exit 1; }
    start_ns=$(( ${t0/./} * 1000 ))
    echo $(( $(field banner_realtime_ns "$out") - start_ns )) >>"$work/start"
    field setup_ns "$out" >>"$work/setup"
    field load_ns "$out" >>"$work/load"
    field run_to_banner_ns "$out" >>"$work/run"
    field exits "$out" >>"$work/exits"
    p=$(grep -o '"protocol":"[a-z0-9]*"' <<<"$out" | cut -d'"' -f4)
done
ms() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1e6 }'; }
start=$(median <"$work/start"); setup=$(median <"$work/setup"); load=$(median <"$work/load")
run=$(median <"$work/run"); exits=$(median <"$work/exits")
pvm=false; [ -d /sys/module/kvm_pvm ] && pvm=true
if [ "$json" = 1 ]; then
    printf '{"runs":%d,"kernel":"%s","protocol":"%s","start_to_banner_ms":%s,"vm_setup_ms":%s,"load_ms":%s,"run_to_banner_ms":%s,"exits":%s,"pvm":%s}\n' \
        "$runs" "$kernel" "$p" "$(ms "$start")" "$(ms "$setup")" "$(ms "$load")" "$(ms "$run")" "$exits" "$pvm"
else
    echo "runs:                              $runs (medians; $kernel via $p; /dev/kvm PVM: $pvm)"
    echo "process start -> \"Linux version\":  $(ms "$start") ms"
    echo "  VM setup:                        $(ms "$setup") ms"
    echo "  kernel/initrd load + boot setup: $(ms "$load") ms"
    echo "  KVM_RUN -> banner:               $(ms "$run") ms ($exits exits)"
fi
