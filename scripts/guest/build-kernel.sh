#!/bin/bash
# Build the kata-runtime guest kernel from Debian's linux-source-6.12 package.
#
# Usage: scripts/guest/build-kernel.sh [--print-path | --cached] [--variant NAME]
#
#   Builds (or reuses from cache) a kernel configured by scripts/guest/kernel.config on top
#   of `make tinyconfig`, then copies vmlinux and bzImage to ${KATA_SHARE:-/usr/share/kata-runtime}/.
#   --print-path    print only the cache directory (holding vmlinux, bzImage, .config, release)
#                   on stdout; all progress goes to stderr.
#   --cached        only print the cache directory if that kernel is already built (exit 1
#                   if not); builds and installs nothing (tests use it to find the L1 kernel)
#   --variant NAME  also apply scripts/guest/kernel-NAME.config (after kernel.config), build in
#                   $KATA_CACHE/build-NAME and cache as kernel-NAME-<key>; installs nothing
#                   (e.g. `--variant l1`: the nested-validation L1 host kernel with KVM, docs/vmm.md).
#
# Cache: ${KATA_CACHE:-/var/cache/kata-runtime}/kernel-<key>/, where <key> is the first 16 hex
# digits of sha256(config fragments + "\n" + source package version). A re-run with an
# unchanged key only compares/copies files (well under a second).
# Source is extracted once to $KATA_CACHE/src/<pkg>_<version>/, objects go to $KATA_CACHE/build/
# (reused, so a config change rebuilds incrementally).
#
# Installs nothing: the project's setup script must apt-get install
#   linux-source-6.12 build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils lz4
set -euo pipefail

PRINT_PATH=0
CACHED_ONLY=0
VARIANT=
while [ $# -gt 0 ]; do
    case "$1" in
        --print-path) PRINT_PATH=1 ;;
        --cached) CACHED_ONLY=1 ;;
        --variant) [ $# -ge 2 ] || { echo "build-kernel.sh: --variant needs a name" >&2; exit 2; }
                   VARIANT=$2; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "build-kernel.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FRAGMENTS=("$HERE/kernel.config")
case "$VARIANT" in
    "") ;;
    *[!a-z0-9_-]*) echo "build-kernel.sh: bad variant name: $VARIANT" >&2; exit 2 ;;
    *) FRAGMENTS+=("$HERE/kernel-$VARIANT.config") ;;
esac
PKG=${KATA_KERNEL_PKG:-linux-source-6.12}
TARBALL=${KATA_KERNEL_TARBALL:-/usr/src/$PKG.tar.xz}
CACHE_ROOT=${KATA_CACHE:-/var/cache/kata-runtime}
SHARE=${KATA_SHARE:-/usr/share/kata-runtime}
JOBS=${KATA_KERNEL_JOBS:-$(nproc)}
ARCH_ARGS=(ARCH=x86_64)

log() { echo "build-kernel: $*" >&2; }
die() { echo "build-kernel: error: $*" >&2; exit 1; }

# ---- prerequisites ---------------------------------------------------------------------------
for f in "${FRAGMENTS[@]}"; do [ -r "$f" ] || die "missing config fragment $f"; done
VERSION=$(dpkg-query -W -f '${Version}' "$PKG" 2>/dev/null || true)
[ -n "$VERSION" ] && [ -r "$TARBALL" ] || \
    die "kernel source not found ($PKG not installed or $TARBALL missing); run: apt-get install $PKG"

# The key of the plain kernel is unchanged by variants (hash of kernel.config alone).
KEY=$( { cat "${FRAGMENTS[@]}"; printf '\n%s\n' "$VERSION"; } | sha256sum | cut -c1-16)
OUT="$CACHE_ROOT/kernel-${VARIANT:+$VARIANT-}$KEY"

install_to_share() {
    [ -z "$VARIANT" ] || return 0
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
if [ "$CACHED_ONLY" = 1 ]; then
    cached || { log "not built yet: $OUT"; exit 1; }
    echo "$OUT"
    exit 0
fi
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
# One lock per build directory (variants build beside the plain kernel), one for the source.
exec 9>"$CACHE_ROOT/.kernel-build${VARIANT:+-$VARIANT}.lock"
flock 9
if cached; then finish; fi   # another run built it while we waited

# ---- source -----------------------------------------------------------------------------------------
SRC="$CACHE_ROOT/src/${PKG}_$VERSION"
exec 8>"$CACHE_ROOT/.kernel-src.lock"
flock 8
if [ ! -e "$SRC/.extracted" ]; then
    log "extracting $TARBALL ($VERSION) to $SRC"
    rm -rf "$SRC" "$SRC.tmp"
    mkdir -p "$SRC.tmp"
    tar -C "$SRC.tmp" --strip-components=1 -xf "$TARBALL"
    touch "$SRC.tmp/.extracted"
    mv "$SRC.tmp" "$SRC"
fi
flock -u 8

# ---- configure ---------------------------------------------------------------------------------------
BUILD="$CACHE_ROOT/build${VARIANT:+-$VARIANT}"
# An out-of-tree build dir belongs to one source tree; start afresh if the source changed.
if [ "$(cat "$BUILD/.source" 2>/dev/null)" != "$SRC" ]; then
    rm -rf "$BUILD"
    mkdir -p "$BUILD"
    echo "$SRC" > "$BUILD/.source"
fi
MAKE=(make -C "$SRC" O="$BUILD" "${ARCH_ARGS[@]}" -j"$JOBS"
      KBUILD_BUILD_USER=kata KBUILD_BUILD_HOST=kata-runtime)

log "configuring (tinyconfig + ${FRAGMENTS[*]})"
"${MAKE[@]}" -s tinyconfig >&2
(cd "$BUILD" && "$SRC/scripts/kconfig/merge_config.sh" -m -O "$BUILD" "$BUILD/.config" "${FRAGMENTS[@]}") >/dev/null
"${MAKE[@]}" -s olddefconfig >&2

# Every setting in the fragments must survive olddefconfig (catches typos and unmet
# dependencies); when a variant's fragment sets a symbol again, its (later) line is the one wanted.
bad=0
declare -A WANT=()
ORDER=()
while IFS= read -r line; do
    case "$line" in
        CONFIG_*=*) sym=${line%%=*}; want=$line ;;
        "# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *}; want="" ;;
        *) continue ;;
    esac
    [ -n "${WANT[$sym]+set}" ] || ORDER+=("$sym")
    WANT[$sym]=$want
done < <(cat "${FRAGMENTS[@]}")
for sym in "${ORDER[@]}"; do
    want=${WANT[$sym]}
    have=$(grep -E "^($sym=|# $sym is not set)" "$BUILD/.config" || true)
    if [ -z "$want" ]; then
        case "$have" in ""|"# $sym is not set") ;; *) log "config: wanted $sym unset, got: $have"; bad=1 ;; esac
    elif [ "$have" != "$want" ]; then
        log "config: wanted $want, got: ${have:-<absent>}"; bad=1
    fi
done
[ "$bad" = 0 ] || die "config fragment settings did not apply (see above)"

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
