#!/usr/bin/env bash
# Built-in VMM benchmark (issue 3): process start to the first guest exit of a tiny guest, and the
# VMM's resident memory beyond guest memory, median of N runs (default 25).
#
# The probe is VMM.TinyGuestProbe (a 19-byte 64-bit guest: "ok" on the serial port, then the
# debug-exit port). By default this script builds a throwaway static driver around it from a
# release build of the VMM target (no change to Package.swift); once the CLI exposes the probe,
# pass its command instead, e.g.  --cmd "/path/to/kata-runtime <hidden-probe-command>".
#
# "Process start" is taken in this shell immediately before the fork; the probe reports
# CLOCK_REALTIME at its first KVM exit. So the number includes fork, exec, the Swift runtime's
# start-up, /dev/kvm open, VM/memory/irqchip/vCPU setup and the guest's first instructions.
#
# Usage: scripts/bench/vmm-tiny-guest.sh [-n RUNS] [--cmd "COMMAND ARGS"] [--json]
set -euo pipefail

runs=25
cmd=""
json=0
while [ $# -gt 0 ]; do
    case "$1" in
        -n) runs="$2"; shift 2 ;;
        --cmd) cmd="$2"; shift 2 ;;
        --json) json=1; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ "$runs" -ge 1 ] || { echo "-n must be >= 1" >&2; exit 2; }

repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d /tmp/vmm-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT

if [ -z "$cmd" ]; then
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
exit(TinyGuestProbe.commandMain(CommandLine.arguments))
SWIFT
    # VMM imports OCI (JSON for the probe report), which brings CShims and yajl along.
    swiftc -O -static-executable -module-name vmmprobe "$work/main.swift" \
        -I "$rel/Modules" -Xcc -fmodule-map-file="$rel/CKVM.build/module.modulemap" \
        -Xcc -fmodule-map-file="$rel/CShims.build/module.modulemap" \
        -Xcc -fmodule-map-file="$repo/Sources/CYajl/module.modulemap" \
        -Xcc -I"$repo/Sources/CKVM/include" -Xcc -I"$repo/Sources/CShims/include" \
        "$rel"/VMM.build/*.o "$rel"/CKVM.build/*.o "$rel"/OCI.build/*.o "$rel"/CShims.build/*.o \
        "$rel"/Hypervisor.build/*.o "$rel"/Agent.build/*.o \
        -o "$work/vmm-probe" >"$work/link.log" 2>&1 || { cat "$work/link.log" >&2; exit 1; }
    strip "$work/vmm-probe"
    cmd="$work/vmm-probe"
    echo "driver: static executable, $(stat -c %s "$work/vmm-probe") bytes" >&2
fi

field() { grep -o "\"$1\":[0-9]*" <<<"$2" | head -1 | cut -d: -f2; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

$cmd >/dev/null 2>&1 || true   # warm the page cache
: >"$work/start"; : >"$work/wall"; : >"$work/setup"; : >"$work/inguest"; : >"$work/rss"; : >"$work/prss"
for _ in $(seq "$runs"); do
    t0=$EPOCHREALTIME
    out="$($cmd)" || { echo "probe failed: $out" >&2; exit 1; }
    t1=$EPOCHREALTIME
    grep -q '"ran":true' <<<"$out" || { echo "guest did not run: $out" >&2; exit 1; }
    start_ns=$(( ${t0/./} * 1000 ))
    end_ns=$(( ${t1/./} * 1000 ))
    first=$(field first_exit_realtime_ns "$out")
    echo $(( first - start_ns )) >>"$work/start"
    echo $(( end_ns - start_ns )) >>"$work/wall"
    field setup_ns "$out" >>"$work/setup"
    field first_exit_ns "$out" >>"$work/inguest"
    field vmm_rss_beyond_guest_bytes "$out" >>"$work/rss"
    field process_rss_bytes "$out" >>"$work/prss"
done

ms() { awk -v n="$1" 'BEGIN { printf "%.3f", n / 1e6 }'; }
mib() { awk -v n="$1" 'BEGIN { printf "%.2f", n / 1048576 }'; }
start=$(median <"$work/start"); wall=$(median <"$work/wall"); setup=$(median <"$work/setup")
inguest=$(median <"$work/inguest"); rss=$(median <"$work/rss"); prss=$(median <"$work/prss")
pvm=false; [ -d /sys/module/kvm_pvm ] && pvm=true
if [ "$json" = 1 ]; then
    printf '{"runs":%d,"start_to_first_exit_ms":%s,"process_wall_ms":%s,"vm_setup_ms":%s,"run_to_first_exit_ms":%s,"process_rss_mib":%s,"vmm_rss_beyond_guest_mib":%s,"pvm":%s}\n' \
        "$runs" "$(ms "$start")" "$(ms "$wall")" "$(ms "$setup")" "$(ms "$inguest")" "$(mib "$prss")" "$(mib "$rss")" "$pvm"
else
    echo "runs:                                 $runs (medians; /dev/kvm PVM: $pvm)"
    echo "process start -> first guest exit:    $(ms "$start") ms   (target <= 5 ms)"
    echo "  of which VM setup in the process:   $(ms "$setup") ms"
    echo "  KVM_RUN -> first exit:              $(ms "$inguest") ms"
    echo "whole process (start -> exit):        $(ms "$wall") ms"
    echo "process RSS with the VM running:      $(mib "$prss") MiB"
    echo "VMM RSS beyond guest memory:          $(mib "$rss") MiB   (target <= 5 MiB)"
fi
