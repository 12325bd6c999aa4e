#!/bin/bash
# Boots the L1 guest for nested validation of the built-in VMM (docs/vmm.md): QEMU TCG emulating
# an AMD-V CPU, the L1 kernel (KVM built in, `scripts/guest/build-kernel.sh --variant l1`) and an
# initramfs from scripts/nested/build-l1-image.sh. The L1's serial console goes to stdout; QEMU
# exits when the L1 reboots (its /init does when its test script ends).
#
# Usage: scripts/nested/run-l1.sh L1_IMAGE [--smp N] [--memory MIB] [--cpu MODEL] [--timeout SECONDS]
#   --cpu      QEMU CPU model (default "max,-xsave": what TCG emulates, AMD-V with nested paging,
#              without XSAVE: QEMU 7.2's TCG does not raise the SVM intercept for XSETBV, so
#              an L2 guest's XCR0 changes bypass L1's KVM; see docs/vmm.md)
#   --timeout  kill QEMU after this long (default 1200); exit status 124 then
# Environment: KATA_L1_KERNEL overrides the L1 kernel (vmlinux); KATA_L1_MONITOR=PATH adds a QEMU
# monitor on that unix socket (to look at a hung L1: `info registers`); KATA_L1_ACCEL overrides
# the -accel argument (default tcg).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "run-l1: $*" >&2; exit 1; }
[ $# -ge 1 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
IMAGE=$1; shift
SMP=1 MEM=2048 CPU=max,-xsave TIMEOUT=1200
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || die "$1 needs a value"
    case "$1" in
        --smp) SMP=$2 ;;
        --memory) MEM=$2 ;;
        --cpu) CPU=$2 ;;
        --timeout) TIMEOUT=$2 ;;
        *) die "unknown option $1" ;;
    esac
    shift 2
done
[ -r "$IMAGE" ] || die "$IMAGE is not readable"
QEMU=${KATA_QEMU:-qemu-system-x86_64}
command -v "$QEMU" >/dev/null || die "$QEMU not found (apt-get install qemu-system-x86)"
KERNEL=${KATA_L1_KERNEL:-}
if [ -z "$KERNEL" ]; then
    KERNEL=$("$HERE/../guest/build-kernel.sh" --variant l1 --print-path)/vmlinux
fi
[ -r "$KERNEL" ] || die "L1 kernel $KERNEL missing"

# tsc_early_khz: TCG's TSC cannot be calibrated reliably against its PIT (platform.md).
APPEND="console=ttyS0 reboot=t panic=-1 tsc_early_khz=2000000 rdinit=/init 8250.nr_uarts=1 quiet"
MONITOR=()
[ -z "${KATA_L1_MONITOR:-}" ] || MONITOR=(-monitor "unix:$KATA_L1_MONITOR,server,nowait")
exec timeout --foreground -k 5 "$TIMEOUT" "$QEMU" \
    -M microvm,acpi=off,pit=on,pic=on,rtc=on,x-option-roms=off -accel "${KATA_L1_ACCEL:-tcg}" -cpu "$CPU" \
    -m "$MEM" -smp "$SMP" -nodefaults -no-user-config -display none -no-reboot \
    -kernel "$KERNEL" -initrd "$IMAGE" -append "$APPEND" -serial stdio "${MONITOR[@]}"
