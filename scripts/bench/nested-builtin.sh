#!/usr/bin/env bash
# Built-in VMM on hardware virtualization, measured in the nested setup (docs/vmm.md, "Nested
# validation"): boots one L1 guest (QEMU TCG with emulated AMD-V, KVM inside) and runs N
# sequential `kata-runtime run`s of /bin/true on the built-in VMM there; prints the medians of
# the run's wall time and of the keeper's milestones (agent port open, agent ready, container
# created, from VM start). Two levels of emulation: the numbers say how the code paths behave
# and where time goes, not how fast a real VT-x/AMD-V host is.
#
# Usage: scripts/bench/nested-builtin.sh [-n RUNS] [--vcpus N] [--l1-cpus N] [--bin KATA_RUNTIME]
#   --bin  a static kata-runtime (default $KATA_RUNTIME_BIN or /usr/local/bin/kata-runtime)
# Needs the L1 kernel (scripts/guest/build-kernel.sh --variant l1) and the guest image.
set -euo pipefail
runs=5 vcpus=1 l1cpus=1
bin=${KATA_RUNTIME_BIN:-/usr/local/bin/kata-runtime}
while [ $# -gt 0 ]; do
    case "$1" in
        -n) runs=$2; shift 2 ;;
        --vcpus) vcpus=$2; shift 2 ;;
        --l1-cpus) l1cpus=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "nested-builtin: unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$runs" in ''|*[!0-9]*|0) echo "nested-builtin: -n needs a positive number" >&2; exit 2 ;; esac
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d /tmp/nested-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
{ echo "RUNS=$runs"; cat "$repo/scripts/nested/bench.sh"; } > "$work/bench.sh"
"$repo/scripts/nested/build-l1-image.sh" "$bin" "$work/bench.sh" "$work/l1.cpio" "$vcpus"
start=$(date +%s.%N)
"$repo/scripts/nested/run-l1.sh" "$work/l1.cpio" --smp "$l1cpus" --timeout $((120 + runs * 120)) > "$work/console" 2>"$work/qemu.err" || true
end=$(date +%s.%N)
grep -q '^@@l1 kvm svm' "$work/console" || { echo "nested-builtin: the L1 has no AMD-V /dev/kvm:" >&2; cat "$work/console" >&2; exit 1; }
ok=$(grep -c '^@@bench status=0 ' "$work/console" || true)
[ "$ok" = "$runs" ] || { echo "nested-builtin: $ok of $runs runs succeeded:" >&2; cat "$work/console" >&2; exit 1; }
python3 - "$work/console" "$runs" "$vcpus" "$l1cpus" "$start" "$end" <<'EOF'
import re, statistics, sys
console, runs, vcpus, l1cpus, start, end = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]), float(sys.argv[6])
rows = [dict((k, int(v)) for k, v in re.findall(r"(\w+)_ms=(\d+)", l)) for l in open(console) if l.startswith("@@bench ")]
up = re.search(r"^@@l1 up ([0-9.]+) s", open(console).read(), re.M)
print(f"nested built-in VMM: {runs} runs of /bin/true, {vcpus} L2 vCPU(s), {l1cpus} L1 CPU(s); "
      f"L1 up after {up.group(1) if up else '?'} s (guest uptime), whole L1 session {end - start:.1f} s")
print("  per run, VM start -> container created (s): " + " ".join(f"{r['created'] / 1000:.1f}" for r in rows))
for key, what in [("connected", "VM start -> agent port open (guest kernel boot)"),
                  ("ready", "VM start -> guest agent ready"),
                  ("created", "VM start -> container created"),
                  ("total", "kata-runtime run, wall time")]:
    v = [r[key] for r in rows]
    print(f"  {what:48s} median {statistics.median(v) / 1000:6.2f} s  (min {min(v) / 1000:.2f}, max {max(v) / 1000:.2f})")
EOF
