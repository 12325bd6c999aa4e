#!/bin/bash
# Builds the L1 guest's initramfs for nested validation of the built-in VMM (docs/vmm.md).
#
# Usage: scripts/nested/build-l1-image.sh KATA_RUNTIME TEST_SCRIPT OUTPUT [VCPUS]
#
#   KATA_RUNTIME  a static kata-runtime binary: the L1's runtime and (through a fresh guest
#                 initramfs made by scripts/guest/build-initramfs.sh) the L2 guest's /init
#   TEST_SCRIPT   shell script run inside L1 as /nested/test.sh (it may source /nested/lib.sh)
#   OUTPUT        the uncompressed newc cpio to write
#   VCPUS         default_vcpus of the L1's kata-runtime configuration (default 1)
# The L2 guest kernel is ${KATA_GUEST_KERNEL:-/usr/share/kata-runtime/vmlinux}, or the cached
# build of scripts/guest/build-kernel.sh when that is missing. KATA_L1_EXTRA=DIR copies DIR's
# contents into the L1's /extra (debugging tools). Needs root (mknod), cpio, busybox-static.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "build-l1-image: $*" >&2; exit 1; }
[ $# -ge 3 ] && [ $# -le 4 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
KATA=$1 SCRIPT=$2 OUTPUT=$3 VCPUS=${4:-1}
[ -x "$KATA" ] || die "$KATA is not executable"
[ -r "$SCRIPT" ] || die "$SCRIPT is not readable"
case "$VCPUS" in ''|*[!0-9]*) die "VCPUS must be a number, not $VCPUS" ;; esac
[ -x /bin/busybox ] || die "/bin/busybox missing (apt-get install busybox-static)"
command -v cpio >/dev/null || die "cpio missing (apt-get install cpio)"
GUEST_KERNEL=${KATA_GUEST_KERNEL:-/usr/share/kata-runtime/vmlinux}
if [ ! -r "$GUEST_KERNEL" ]; then
    GUEST_KERNEL=$("$HERE/../guest/build-kernel.sh" --print-path 2>/dev/null)/vmlinux || true
    [ -r "$GUEST_KERNEL" ] || die "no guest kernel (run scripts/guest/build-kernel.sh)"
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/kata-l1.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/local/bin,usr/share/kata-runtime,etc/kata-runtime,nested,dev,proc,sys,tmp,run}
cp /bin/busybox "$STAGE/bin/busybox"
ln -s busybox "$STAGE/bin/sh"
mknod -m 0600 "$STAGE/dev/console" c 5 1
cp "$HERE/l1-init.sh" "$STAGE/init"
chmod 0755 "$STAGE/init"
cp "$HERE/lib.sh" "$STAGE/nested/lib.sh"
cp "$SCRIPT" "$STAGE/nested/test.sh"
[ -z "${KATA_L1_EXTRA:-}" ] || cp -a "$KATA_L1_EXTRA" "$STAGE/extra"
strip -o "$STAGE/usr/local/bin/kata-runtime" "$KATA" 2>/dev/null || cp "$KATA" "$STAGE/usr/local/bin/kata-runtime"
"$HERE/../guest/build-initramfs.sh" "$STAGE/usr/local/bin/kata-runtime" "$STAGE/usr/share/kata-runtime/kata-initrd.img"
cp "$GUEST_KERNEL" "$STAGE/usr/share/kata-runtime/vmlinux"
cat > "$STAGE/etc/kata-runtime/configuration.toml" <<EOF
# Written by scripts/nested/build-l1-image.sh. auto: the L1 has AMD-V and kvm_amd, so the built-in VMM.
[hypervisor]
backend = "auto"
kernel = "/usr/share/kata-runtime/vmlinux"
initrd = "/usr/share/kata-runtime/kata-initrd.img"
default_vcpus = $VCPUS
default_memory = 256

[runtime]
boot_timeout = 300
EOF
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$OUTPUT.tmp.$$"
mv -f "$OUTPUT.tmp.$$" "$OUTPUT"
