#!/bin/bash
# Installs everything kata-runtime needs on Debian 12 and builds it:
#   apt packages, the static kata-runtime binary (-> /usr/local/bin), the guest kernel
#   (cached by config hash) and the guest initramfs (-> /usr/share/kata-runtime), the L1 kernel
#   of the nested built-in VMM test (cached only), and the
#   configuration file (-> /etc/kata-runtime, kept if it already exists).
# Re-running is fast when nothing changed. Must run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
SHARE=${KATA_SHARE:-/usr/share/kata-runtime}
BIN_DIR=${KATA_BIN_DIR:-/usr/local/bin}
ETC=${KATA_ETC:-/etc/kata-runtime}
log() { echo "setup: $*" >&2; }

[ "$(id -u)" = 0 ] || { echo "setup: must run as root (apt-get, /usr/local/bin, /usr/share)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
PACKAGES=(
    # build: Swift is preinstalled at /opt/swift; C libraries for the static link
    build-essential pkg-config libseccomp-dev libcap-dev libyajl-dev
    # guest kernel from Debian's source package
    linux-source-6.12 bc bison flex libelf-dev libssl-dev cpio xz-utils lz4 kmod
    # hypervisor backend and virtio-fs daemon (/usr/lib/qemu/virtiofsd)
    qemu-system-x86
    # test bundles and the reference runtime for comparisons
    busybox-static runc iproute2 procps
)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v swift >/dev/null; then export PATH=/opt/swift/usr/bin:$PATH; fi
command -v swift >/dev/null || { echo "setup: swift not found (expected /opt/swift/usr/bin)" >&2; exit 1; }

log "building kata-runtime (release, static)"
swift build -c release -Xswiftc -static-executable --product kata-runtime >&2
BIN=$(swift build -c release -Xswiftc -static-executable --show-bin-path)/kata-runtime
install -D -m 0755 "$BIN" "$BIN_DIR/kata-runtime"

log "guest kernel"
KATA_SHARE="$SHARE" scripts/guest/build-kernel.sh >&2
# The L1 kernel for the nested test of the built-in VMM (docs/vmm.md): KVM + KVM_AMD on top of
# the guest config, in its own build directory, cached by config hash, installs nothing (~5 min).
log "L1 kernel for nested validation"
scripts/guest/build-kernel.sh --variant l1 >&2

log "guest initramfs"
mkdir -p "$SHARE"
STRIPPED=$(mktemp)
trap 'rm -f "$STRIPPED"' EXIT
strip -o "$STRIPPED" "$BIN"
scripts/guest/build-initramfs.sh "$STRIPPED" "$SHARE/kata-initrd.img.new"
if cmp -s "$SHARE/kata-initrd.img.new" "$SHARE/kata-initrd.img"; then rm -f "$SHARE/kata-initrd.img.new"
else mv -f "$SHARE/kata-initrd.img.new" "$SHARE/kata-initrd.img"; fi

if [ ! -e "$ETC/configuration.toml" ]; then
    install -D -m 0644 config/configuration.toml "$ETC/configuration.toml"
fi
if [ -d man ] && ls man/*.[0-9] >/dev/null 2>&1; then
    for m in man/*.[0-9]; do install -D -m 0644 "$m" "/usr/local/share/man/man${m##*.}/$(basename "$m")"; done
fi
log "done: $("$BIN_DIR/kata-runtime" --version | head -1), kernel $(cat "$(KATA_SHARE="$SHARE" scripts/guest/build-kernel.sh --print-path 2>/dev/null)/release")"
