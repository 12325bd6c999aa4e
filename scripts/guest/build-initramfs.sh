#!/bin/bash
# Build the kata-runtime guest initramfs.
#
# Usage: scripts/guest/build-initramfs.sh INIT_BINARY OUTPUT
#
# Writes an uncompressed newc cpio archive to OUTPUT containing:
#   /init            INIT_BINARY (must be a static executable; it runs as PID 1)
#   /dev/console     character device 5,1 (so PID 1 has stdin/stdout/stderr)
#   /dev /proc /sys /run /tmp /mnt  empty directories (mount points)
# Uncompressed on purpose: under QEMU TCG the kernel's decompressors run emulated and cost
# more than reading a few more MiB from guest RAM. Needs root (mknod), cpio and coreutils.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 INIT_BINARY OUTPUT" >&2
    exit 2
fi
INIT=$1
OUTPUT=$2
[ -f "$INIT" ] && [ -x "$INIT" ] || { echo "build-initramfs: $INIT is not an executable file" >&2; exit 1; }
command -v cpio >/dev/null || { echo "build-initramfs: cpio not found (apt-get install cpio)" >&2; exit 1; }

OUT_DIR=$(cd "$(dirname "$OUTPUT")" && pwd)
TMP_OUT="$OUT_DIR/.$(basename "$OUTPUT").tmp.$$"
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/kata-initramfs.XXXXXX")
trap 'rm -rf "$STAGE" "$TMP_OUT"' EXIT

mkdir -m 0755 "$STAGE/dev" "$STAGE/proc" "$STAGE/sys" "$STAGE/run" "$STAGE/mnt"
mkdir -m 1777 "$STAGE/tmp"
mknod -m 0600 "$STAGE/dev/console" c 5 1
cp "$INIT" "$STAGE/init"
chmod 0755 "$STAGE/init"
# Fixed timestamps so the same input gives the same archive.
find "$STAGE" -exec touch -h -d @0 {} +

(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) > "$TMP_OUT"
mv -f "$TMP_OUT" "$OUTPUT"
