# Shared helpers for scripts/clients/*-e2e.sh (sourced, not run).
# Results: PASS (works as with runc), FAIL (a user-visible failure), NOTE (differs from
# runc by design of a VM runtime, or an observation worth recording).

KATA=${KATA:-/usr/local/bin/kata-runtime}
PASSES=0 FAILS=0 NOTES=0
FAILED=()
T0=$SECONDS

say()  { printf '%s\n' "$*"; }
pass() { PASSES=$((PASSES + 1)); say "PASS  $1"; }
fail() { FAILS=$((FAILS + 1)); FAILED+=("$1"); say "FAIL  $1"; shift; local l; for l in "$@"; do say "        $l"; done; }
note() { say "NOTE  $1"; NOTES=$((NOTES + 1)); shift; local l; for l in "$@"; do say "        $l"; done; }
step() { say ""; say "== $* ($((SECONDS - T0)) s)"; }

# cap CMD...: runs with a timeout; sets OUT (stdout, CRs removed), ERR (stderr) and RC.
cap() {
    local errf
    errf=$(mktemp "$TMP/err.XXXXXX")
    OUT=$(set -o pipefail; timeout "${TMO:-90}" "$@" 2>"$errf" </dev/null | tr -d '\r')
    RC=$?
    ERR=$(cat "$errf"); rm -f "$errf"
}

# capin INPUT CMD...: like cap, with INPUT on stdin.
capin() {
    local input=$1 errf; shift
    errf=$(mktemp "$TMP/err.XXXXXX")
    OUT=$(printf '%s' "$input" | timeout "${TMO:-90}" "$@" 2>"$errf" | tr -d '\r'; exit "${PIPESTATUS[1]}")
    RC=$?
    ERR=$(cat "$errf"); rm -f "$errf"
}

# rc_of CMD...: exit status only (output discarded).
rc_of() { timeout "${TMO:-90}" "$@" </dev/null >/dev/null 2>&1; echo $?; }

# check NAME EXPECTED_RC EXPECTED_OUT: compares the last cap.
check() {
    local name=$1 want_rc=$2 want_out=$3
    if [ "$RC" = "$want_rc" ] && [ "$OUT" = "$want_out" ]; then pass "$name"
    else fail "$name" "expected rc=$want_rc out=$(printf %q "$want_out")" "got      rc=$RC out=$(printf %q "$OUT")" \
              ${ERR:+"stderr: $(printf '%s' "$ERR" | tail -3 | tr '\n' ' ')"}; fi
}

# tty_session CMD INPUT: runs CMD under script(1) (a real pty) and types INPUT after 2 s.
# Sets OUT (CRs and escape sequences removed) and RC (the command's exit status).
tty_session() {
    local cmd=$1 input=$2
    OUT=$( (sleep 2; printf '%s' "$input") | timeout 60 script -qec "$cmd" /dev/null 2>&1 | tr -d '\r' | sed 's/\x1b\[[0-9;]*[a-zA-Z]//g'; exit "${PIPESTATUS[1]}")
    RC=$?
}

# Processes belonging to this run: a keeper, QEMU, virtiofsd or shim whose command line
# or working directory is under $1. Prints "PID COMM".
vm_procs_under() {
    local dir=$1 p comm cmd cwd
    for p in /proc/[0-9]*; do
        comm=$(cat "$p/comm" 2>/dev/null) || continue
        case $comm in kata-runtime|qemu-system-x86|virtiofsd|containerd-shim*|conmon) ;; *) continue ;; esac
        cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)
        cwd=$(readlink "$p/cwd" 2>/dev/null)
        case "$cmd $cwd" in *"$dir"*) echo "${p#/proc/} $comm" ;; esac
    done
}

# Mount points under $1 (from mountinfo, field 5).
mounts_under() { awk -v d="$1" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo; }

# Waits up to $2 s for process $1 to exit.
wait_gone() { local i; for ((i = 0; i < $2 * 10; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }

# A busybox rootfs tarball at $1, from the host's static /bin/busybox.
make_busybox_tar() {
    local out=$1 r
    r=$(mktemp -d "$TMP/rootfs.XXXXXX")
    mkdir -p "$r"/{bin,sbin,etc,tmp,proc,sys,dev,root,data,var/tmp}
    chmod 1777 "$r/tmp"
    cp /bin/busybox "$r/bin/busybox"
    local a
    for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$r/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
    tar -C "$r" -cf "$out" .
    rm -rf "$r"
}

apt_install() {
    say "installing $* (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null &&
        apt-get -o DPkg::Lock::Timeout=600 install -y -q "$@" >/dev/null
}

summary() {
    say ""
    say "== $1: $PASSES passed, $FAILS failed, $NOTES notes, $((SECONDS - T0)) s"
    local f; for f in "${FAILED[@]}"; do say "   failed: $f"; done
}
