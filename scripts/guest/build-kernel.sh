#!/bin/bash
# Build the kata-runtime guest kernel from Debian's linux-source-6.12 package.
#
# Usage: scripts/guest/build-kernel.sh [--print-path]
#
#   Builds (or reuses from cache) a kernel configured by scripts/guest/kernel.config on top
#   of `make tinyconfig`, then copies vmlinux and bzImage to ${KATA_SHARE:-/usr/share/kata-runtime}/.
#   --print-path  print only the cache directory (holding vmlinux, bzImage, .config, release)
#                 on stdout; all progress goes to stderr.
#
# Cache: ${KATA_CACHE:-/var/cache/kata-runtime}/kernel-<key>/, where <key> is the first 16 hex
# digits of sha256(kernel.config contents + "\n" + source package version). A re-run with an
# unchanged key only compares/copies files (well under a second).
# Source is extracted once to $KATA_CACHE/src/<pkg>_<version>/, objects go to $KATA_CACHE/build/
# (reused, so a config change rebuilds incrementally).
#
# Installs nothing: the project's setup script must apt-get install
#   linux-source-6.12 build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils lz4
set -euo pipefail

PRINT_PATH=0
for arg in "$@"; do
    case "$arg" in
        --print-path) PRINT_PATH=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "build-kernel.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FRAGMENT="$HERE/kernel.config"
PKG=${KATA_KERNEL_PKG:-linux-source-6.12}
TARBALL=${KATA_KERNEL_TARBALL:-/usr/src/$PKG.tar.xz}
CACHE_ROOT=${KATA_CACHE:-/var/cache/kata-runtime}
SHARE=${KATA_SHARE:-/usr/share/kata-runtime}
JOBS=${KATA_KERNEL_JOBS:-$(nproc)}
ARCH_ARGS=(ARCH=x86_64)

log() { echo "build-kernel: $*" >&2; }
die() { echo "build-kernel: error: $*" >&2; exit 1; }

# ---- prerequisites ---------------------------------------------------------------------------
[ -r "$FRAGMENT" ] || die "missing config fragment $FRAGMENT"
VERSION=$(dpkg-query -W -f '${Version}' "$PKG" 2>/dev/null || true)
[ -n "$VERSION" ] && [ -r "$TARBALL" ] || \
    die "kernel source not found ($PKG not installed or $TARBALL missing); run: apt-get install $PKG"

KEY=$( { cat "$FRAGMENT"; printf '\n%s\n' "$VERSION"; } | sha256sum | cut -c1-16)
OUT="$CACHE_ROOT/kernel-$KEY"

install_to_share() {
    mkdir -p "$SHARE"
    local f
    for f in vmlinux bzImage; do
        if ! cmp -s "$OUT/$f" "$SHARE/$f"; then
            cp "$OUT/$f" "$SHARE/$f.tmp.$$" && mv -f "$SHARE/$f.tmp.$$" "$SHARE/$f"
            log "installed $SHARE/$f"
        fi
    done
}

finish() {
    install_to_share
    log "kernel $(cat "$OUT/release") in $OUT"
    if [ "$PRINT_PATH" = 1 ]; then echo "$OUT"; fi
    exit 0
}

cached() { [ -s "$OUT/vmlinux" ] && [ -s "$OUT/bzImage" ] && [ -s "$OUT/.config" ] && [ -s "$OUT/release" ]; }

# ---- fast path ----------------------------------------------------------------------------------
if cached; then finish; fi

missing=()
for tool in make gcc ld bc bison flex perl xz tar lz4 cpio sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ -e /usr/include/libelf.h ] || missing+=("libelf-dev")
[ -e /usr/include/openssl/ssl.h ] || missing+=("libssl-dev")
[ ${#missing[@]} -eq 0 ] || \
    die "missing build tools: ${missing[*]}; run: apt-get install build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils lz4"

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.kernel-build.lock"
flock 9
if cached; then finish; fi   # another run built it while we waited

# ---- source -----------------------------------------------------------------------------------------
SRC="$CACHE_ROOT/src/${PKG}_$VERSION"
if [ ! -e "$SRC/.extracted" ]; then
    log "extracting $TARBALL ($VERSION) to $SRC"
    rm -rf "$SRC" "$SRC.tmp"
    mkdir -p "$SRC.tmp"
    tar -C "$SRC.tmp" --strip-components=1 -xf "$TARBALL"
    touch "$SRC.tmp/.extracted"
    mv "$SRC.tmp" "$SRC"
fi

# ---- configure ---------------------------------------------------------------------------------------
BUILD="$CACHE_ROOT/build"
# An out-of-tree build dir belongs to one source tree; start afresh if the source changed.
if [ "$(cat "$BUILD/.source" 2>/dev/null)" != "$SRC" ]; then
    rm -rf "$BUILD"
    mkdir -p "$BUILD"
    echo "$SRC" > "$BUILD/.source"
fi
MAKE=(make -C "$SRC" O="$BUILD" "${ARCH_ARGS[@]}" -j"$JOBS"
      KBUILD_BUILD_USER=kata KBUILD_BUILD_HOST=kata-runtime)

log "configuring (tinyconfig + $FRAGMENT)"
"${MAKE[@]}" -s tinyconfig >&2
(cd "$BUILD" && "$SRC/scripts/kconfig/merge_config.sh" -m -O "$BUILD" "$BUILD/.config" "$FRAGMENT") >/dev/null
"${MAKE[@]}" -s olddefconfig >&2

# Every setting in the fragment must survive olddefconfig (catches typos and unmet dependencies).
bad=0
while IFS= read -r line; do
    case "$line" in
        CONFIG_*=*) sym=${line%%=*}; want=$line ;;
        "# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *}; want="" ;;
        *) continue ;;
    esac
    have=$(grep -E "^($sym=|# $sym is not set)" "$BUILD/.config" || true)
    if [ -z "$want" ]; then
        case "$have" in ""|"# $sym is not set") ;; *) log "config: wanted $sym unset, got: $have"; bad=1 ;; esac
    elif [ "$have" != "$want" ]; then
        log "config: wanted $want, got: ${have:-<absent>}"; bad=1
    fi
done < "$FRAGMENT"
[ "$bad" = 0 ] || die "kernel.config settings did not apply (see above)"

# ---- build ---------------------------------------------------------------------------------------------
log "building with -j$JOBS (a few minutes)"
start=$(date +%s)
"${MAKE[@]}" -s vmlinux bzImage >&2
RELEASE=$("${MAKE[@]}" -s kernelrelease)
log "build took $(( $(date +%s) - start )) s"

rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp"
cp "$BUILD/vmlinux" "$OUT.tmp/vmlinux"
cp "$BUILD/arch/x86/boot/bzImage" "$OUT.tmp/bzImage"
cp "$BUILD/.config" "$OUT.tmp/.config"
echo "$RELEASE" > "$OUT.tmp/release"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
finish
