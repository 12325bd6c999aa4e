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
        cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")  # 2> first: the process may be gone
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

# The stop/kill/rm and volume checks both clients share. $1: the client function (d or p),
# $2: the flags that remove a running container at once ("-f" for docker, "-f -t 0" for podman).
shared_lifecycle_checks() {
    local C=$1 RMF=$2
    # ---------------------------------------------------------------- stop, kill, rm -f
    step "stop, kill, rm -f"
    cap "$C" run -d --name e2e-term "${K[@]}" "$IMG" sh -c 'trap "echo got-TERM; exit 7" TERM; echo up; while true; do sleep 1; done'
    sleep 1
    t=$SECONDS; cap "$C" stop -t 20 e2e-term; dt=$((SECONDS - t))
    cap "$C" inspect -f '{{.State.ExitCode}}' e2e-term
    if [ "$OUT" = 7 ] && [ $dt -lt 10 ]; then pass "stop: SIGTERM handler runs, exit status 7 (${dt} s)"
    else fail "stop: SIGTERM handler" "exit code $OUT after ${dt} s"; fi
    cap "$C" logs e2e-term
    check "stop: the handler's output is in the logs" 0 $'up\ngot-TERM'

    cap "$C" run -d --name e2e-ignore "${K[@]}" "$IMG" sh -c 'trap "" TERM; while true; do sleep 1; done'
    sleep 1
    t=$SECONDS; cap "$C" stop -t 3 e2e-ignore; dt=$((SECONDS - t))
    cap "$C" inspect -f '{{.State.ExitCode}}' e2e-ignore
    if [ "$OUT" = 137 ] && [ $dt -ge 3 ] && [ $dt -lt 15 ]; then pass "stop -t 3: SIGTERM ignored, SIGKILL after the timeout, 137 (${dt} s)"
    else fail "stop -t 3 of a TERM-ignoring container" "exit code $OUT after ${dt} s"; fi

    cap "$C" run -d --name e2e-kill "${K[@]}" "$IMG" sleep 1000
    sleep 1
    cap "$C" kill e2e-kill
    cap "$C" wait e2e-kill
    check "kill: SIGKILL, wait reports 137" 0 "137"

    cap "$C" run -d --name e2e-rmf "${K[@]}" "$IMG" sleep 1000
    RMF_ID=$OUT
    sleep 1
    t=$SECONDS; cap "$C" rm $RMF e2e-rmf; dt=$((SECONDS - t))
    [ "$RC" = 0 ] && [ $dt -lt 10 ] && pass "rm $RMF of a running container (${dt} s)" || fail "rm $RMF" "rc=$RC after ${dt} s: $ERR"
    sleep 1
    if [ -e "$RTROOT/$RMF_ID" ] || vm_procs_under "$RMF_ID" | grep -q .; then
        fail "rm -f leaves no state dir or VM process" "$(ls "$RTROOT/$RMF_ID" 2>&1 | head -3)"
    else pass "rm -f leaves no state dir or VM process"; fi

    cap "$C" rm e2e-term e2e-ignore e2e-kill
    [ "$RC" = 0 ] && pass "rm of stopped containers" || fail "rm of stopped containers" "$ERR"
    cap "$C" rm $RMF e2e-d
    [ "$RC" = 0 ] && pass "rm $RMF e2e-d" || fail "rm $RMF e2e-d" "$ERR"

    # ---------------------------------------------------------------- volumes
    step "volumes"
    V=$TMP/vol; mkdir -p "$V"; echo from-host >"$V/in.txt"
    cap "$C" run --rm "${K[@]}" -v "$V:/data" "$IMG" sh -c 'cat /data/in.txt && echo from-guest > /data/out.txt'
    check "-v hostdir:/data: the guest reads the host's file" 0 "from-host"
    [ "$(cat "$V/out.txt" 2>/dev/null)" = from-guest ] && pass "-v hostdir:/data: the host reads the guest's file" ||
        fail "-v hostdir:/data: guest write reaches the host" "$(ls -la "$V")"
    cap "$C" run -d --name e2e-vol "${K[@]}" -v "$V:/data" "$IMG" sleep 1000
    sleep 1
    echo live-host >"$V/live.txt"
    cap "$C" exec e2e-vol cat /data/live.txt
    check "-v: a host write while running is seen by the guest" 0 "live-host"
    cap "$C" exec e2e-vol sh -c 'echo live-guest > /data/live2.txt'
    [ "$(cat "$V/live2.txt" 2>/dev/null)" = live-guest ] && pass "-v: a guest write while running is seen by the host" ||
        fail "-v: guest write while running" "$(ls -la "$V")"
    cap "$C" rm $RMF e2e-vol
    cap "$C" run --rm "${K[@]}" -v "$V:/data:ro" "$IMG" sh -c 'echo x > /data/ro.txt'
    if [ "$RC" != 0 ] && [ ! -e "$V/ro.txt" ]; then pass "-v hostdir:/data:ro is read-only"; else fail "-v :ro" "rc=$RC; $(ls "$V")"; fi
    echo one-file >"$TMP/single"
    cap "$C" run --rm "${K[@]}" -v "$TMP/single:/etc/single:ro" "$IMG" cat /etc/single
    check "-v hostfile:/etc/single (file bind)" 0 "one-file"
    cap "$C" volume create e2e-named
    cap "$C" run --rm "${K[@]}" -v e2e-named:/v "$IMG" sh -c 'echo named > /v/f'
    cap "$C" run --rm "${K[@]}" -v e2e-named:/v "$IMG" cat /v/f
    check "named volume persists across containers" 0 "named"
    cap "$C" volume rm e2e-named
}

# Capabilities and the engine's default seccomp profile, applied inside the guest as runc
# applies them. $1: the client function (d or p).
shared_security_checks() {
    local C=$1 S='grep -E "^(CapEff|Seccomp):" /proc/self/status | tr "\t\n" " ;"'
    step "capabilities, seccomp"
    cap "$C" run --rm "${K[@]}" "$IMG" sh -c "$S"
    if [ "$RC" = 0 ] && [[ $OUT == *"Seccomp: 2;"* ]] && [[ $OUT != *"CapEff: 0000000000000000"* ]] && [[ $OUT != *"CapEff: 000001ffffffffff"* ]]; then
        pass "default: the engine's capability set (not all, not none) and its seccomp filter ($OUT)"
    else fail "default capabilities and seccomp filter" "rc=$RC out=$OUT" "stderr: $ERR"; fi
    cap "$C" run --rm "${K[@]}" --cap-drop ALL "$IMG" sh -c "$S"
    check "--cap-drop ALL: CapEff 0" 0 "CapEff: 0000000000000000;Seccomp: 2;"
    cap "$C" run --rm "${K[@]}" "$IMG" ip link set lo mtu 1400
    [ "$RC" != 0 ] && pass "without CAP_NET_ADMIN ip link is refused" || fail "without CAP_NET_ADMIN ip link is refused" "it worked"
    cap "$C" run --rm "${K[@]}" --cap-add NET_ADMIN "$IMG" sh -c 'ip link set lo mtu 1400 && echo set'
    check "--cap-add NET_ADMIN: ip link works" 0 "set"
    # swapoff is in no rule of the default profile, whatever the capabilities: the filter
    # answers EPERM. Unconfined, the kernel gets to look at the path.
    cap "$C" run --rm "${K[@]}" --cap-add SYS_ADMIN "$IMG" swapoff /nonexistent
    case $ERR in *"Operation not permitted"*) pass "the default seccomp profile refuses swapoff (EPERM)" ;;
                 *) fail "the default seccomp profile refuses swapoff" "rc=$RC stderr: $ERR" ;; esac
    cap "$C" run --rm "${K[@]}" --cap-add SYS_ADMIN --security-opt seccomp=unconfined "$IMG" sh -c "swapoff /nonexistent; $S"
    if [[ $ERR == *"No such file"* ]] && [[ $OUT == *"Seccomp: 0;"* ]]; then pass "--security-opt seccomp=unconfined: no filter, swapoff reaches the kernel"
    else fail "--security-opt seccomp=unconfined" "rc=$RC out=$OUT stderr: $ERR"; fi
}

# The default bridge network end to end, for both clients. $1: the client function (d or p),
# $2: the engine's network namespace (the test's stand-in for the host), $3: the flags that
# remove a running container at once. Uses K (runtime and ulimit flags) and IMG.
bridge_network_checks() {
    local C=$1 ns=$2 RMF=$3 ip gw i
    local get='printf "GET / HTTP/1.0\r\n\r\n" | nc -w 5' hget='printf "GET / HTTP/1.0\r\n\r\n" | busybox nc -w 5'
    # NET_RAW for busybox ping below: podman's default capabilities lack it (docker's have it),
    # and runc gives the same "permission denied" without it: capabilities apply in the guest.
    cap "$C" run -d --name e2e-web "${K[@]}" --cap-add NET_RAW -p 8080:80 "$IMG" sh -c 'mkdir -p /www && echo web-page > /www/index.html && exec httpd -f -p 80 -h /www'
    [ "$RC" = 0 ] || { fail "default network: run -d -p 8080:80 httpd" "rc=$RC: $ERR"; return; }
    ip=$("$C" inspect -f '{{.NetworkSettings.IPAddress}}' e2e-web 2>/dev/null)
    gw=$("$C" inspect -f '{{.NetworkSettings.Gateway}}' e2e-web 2>/dev/null)
    cap "$C" exec e2e-web ip -o -4 addr show eth0
    if grep -q "inet $ip/" <<<"$OUT" && [ -n "$ip" ]; then pass "default network: eth0 has the address the engine reports ($ip)"
    else fail "default network: eth0 has the engine's address" "engine says ${ip:-nothing}; inside: rc=$RC $OUT $ERR"; fi
    cap "$C" exec e2e-web ip route
    grep -q "default via $gw dev eth0" <<<"$OUT" && [ -n "$gw" ] && pass "default network: default route via the bridge ($gw)" ||
        fail "default network: default route via the bridge" "gateway ${gw:-?}; routes: $(tr '\n' '|' <<<"$OUT") $ERR"
    # The guest's eth0 has the identity of the engine's veth in the container's namespace.
    local key host_eth0
    key=$("$C" inspect -f '{{.NetworkSettings.SandboxKey}}' e2e-web 2>/dev/null)
    host_eth0=$(nsenter --net="$key" ip -o link show eth0 2>&1)
    cap "$C" exec e2e-web sh -c 'echo "$(cat /sys/class/net/eth0/mtu) $(cat /sys/class/net/eth0/address)"'
    local want; want="$(sed -n 's/.* mtu \([0-9]*\) .*link\/ether \([0-9a-f:]*\) .*/\1 \2/p' <<<"$host_eth0")"
    [ -n "$want" ] && [ "$OUT" = "$want" ] && pass "default network: eth0 has the veth's MTU and MAC ($want)" ||
        fail "default network: eth0 has the veth's MTU and MAC" "veth: ${want:-$host_eth0}; guest: $OUT $ERR"
    cap nsenter --net="$key" tc filter show dev eth0 ingress
    grep -q "Egress Redirect to device tap0_kata" <<<"$OUT" && pass "default network: the veth's ingress is redirected to the VM's tap" ||
        fail "default network: tc redirect on the veth" "rc=$RC $OUT $ERR"
    cap "$C" exec e2e-web ping -c 1 -W 5 "$gw"
    [ "$RC" = 0 ] && pass "default network: the container pings the bridge" || fail "default network: ping the bridge" "rc=$RC $OUT $ERR"
    for ((i = 0; i < 20; i++)); do  # httpd may still be starting
        cap ip netns exec "$ns" sh -c "$hget $ip 80"
        grep -q web-page <<<"$OUT" && break; sleep 0.5
    done
    grep -q '^web-page$' <<<"$OUT" && pass "default network: the host side reaches the container's server ($ip:80)" ||
        fail "default network: host side to the container" "rc=$RC $OUT $ERR"
    cap "$C" run --rm "${K[@]}" "$IMG" sh -c "$get $ip 80"
    grep -q '^web-page$' <<<"$OUT" && pass "default network: another kata container reaches it" ||
        fail "default network: container to container" "rc=$RC $OUT $ERR"
    local target
    for target in 127.0.0.1 "$gw"; do
        cap ip netns exec "$ns" sh -c "$hget $target 8080"
        grep -q '^web-page$' <<<"$OUT" && pass "default network: published port $target:8080 reaches it" ||
            fail "default network: published port $target:8080" "rc=$RC $OUT $ERR"
    done
    # Two VMs cannot share one namespace's interfaces: a clear refusal, not a half-connected container.
    cap "$C" run --rm "${K[@]}" --network container:e2e-web "$IMG" true
    if [ "$RC" != 0 ] && grep -q "already connected to another container's VM" <<<"$ERR"; then
        note "--network container:X is refused: a network namespace cannot be shared between VMs" "$(tail -1 <<<"$ERR" | cut -c1-200)"
    else fail "--network container:X is refused clearly" "rc=$RC $OUT $ERR"; fi
    cap "$C" rm $RMF e2e-web
}
