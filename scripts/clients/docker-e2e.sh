#!/bin/bash
# End-to-end: docker (Debian's docker.io 20.10) with kata-runtime, used as a user would.
#
#   scripts/clients/docker-e2e.sh          # KATA=/path/to/kata-runtime to test another binary
#
# Starts a private dockerd (own data-root, exec-root, socket, pidfile, containerd) inside a
# private network namespace, so its docker0 bridge, iptables rules and anything the
# network hooks do never touch the host's network. Imports a busybox image made from
# /bin/busybox (no registry is reachable), runs the checks with `docker --runtime kata`,
# then checks that nothing is left behind. Stops its dockerd by PID and removes its
# temporary directory on every exit. Prints PASS/FAIL/NOTE lines and a summary; exits 1
# if anything failed, 0 otherwise (also when skipped).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" != 0 ]; then echo "SKIP docker-e2e: needs root (dockerd, network namespaces)"; exit 0; fi
TMP=$(mktemp -d /tmp/kata-docker-e2e.XXXXXX)
. "$HERE/lib.sh"
[ -x "$KATA" ] || { echo "SKIP docker-e2e: $KATA not found (run scripts/setup.sh)"; rm -rf "$TMP"; exit 0; }

NS=kata-docker-e2e-$$
SOCK=$TMP/docker.sock
DATA=$TMP/data EXEC=$TMP/exec
RTROOT=$EXEC/runtime-runc/moby          # the --root docker gives every runtime
DPID=""

cleanup() {
    set +e
    if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
        kill -TERM "$DPID"
        wait_gone "$DPID" 30 || { say "dockerd $DPID did not stop; SIGKILL"; kill -KILL "$DPID"; wait_gone "$DPID" 5; }
    fi
    local cpid; cpid=$(cat "$EXEC/containerd/containerd.pid" 2>/dev/null)
    if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null && grep -q "$TMP" "/proc/$cpid/cmdline" 2>/dev/null; then
        kill -TERM "$cpid"; wait_gone "$cpid" 10 || kill -KILL "$cpid"
    fi
    local p c
    while read -r p c; do [ -n "$p" ] && { say "cleanup: killing leftover $c $p"; kill -KILL "$p"; }; done < <(vm_procs_under "$TMP")
    local m
    for m in $(mounts_under "$TMP" | sort -r); do umount -l "$m"; done
    ip netns del "$NS" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- setup
step "setup"
if [ ! -x /usr/sbin/dockerd ] || [ ! -x /usr/bin/docker ]; then
    apt_install docker.io || { fail "install docker.io"; summary docker; exit 1; }
fi
for t in script ip nsenter; do command -v $t >/dev/null || { echo "SKIP docker-e2e: $t missing"; exit 0; }; done
say "dockerd: $(/usr/sbin/dockerd --version)"
say "kata-runtime: $($KATA --version | head -1) ($KATA)"

ip netns add "$NS" && ip -n "$NS" link set lo up || { fail "create network namespace $NS"; summary docker; exit 1; }
mkdir -p "$DATA" "$EXEC"
# nsenter (not `ip netns exec`, which would also unshare the mount namespace and hide
# dockerd's mounts from us) execs dockerd, so $! is dockerd's PID.
nsenter --net=/run/netns/"$NS" /usr/sbin/dockerd \
    --data-root "$DATA" --exec-root "$EXEC" -H "unix://$SOCK" --pidfile "$TMP/dockerd.pid" \
    --add-runtime kata="$KATA" >"$TMP/dockerd.log" 2>&1 &
DPID=$!
for ((i = 0; i < 300; i++)); do
    [ -S "$SOCK" ] && /usr/bin/docker -H "unix://$SOCK" version >/dev/null 2>&1 && break
    kill -0 "$DPID" 2>/dev/null || break
    sleep 0.1
done
if ! /usr/bin/docker -H "unix://$SOCK" version >/dev/null 2>&1; then
    fail "start dockerd" "$(tail -5 "$TMP/dockerd.log")"; summary docker; exit 1
fi
say "dockerd PID $DPID up after $((SECONDS - T0)) s (network namespace $NS, default bridge and iptables inside it)"

# Which client talks to this 20.10 daemon: Debian's /usr/bin/docker (API 1.41) is used.
for c in /usr/bin/docker /usr/local/bin/docker; do
    [ -x $c ] || continue
    if v=$($c -H "unix://$SOCK" version --format '{{.Client.Version}} / server {{.Server.Version}}' 2>&1); then
        say "client $c: $v"
    else say "client $c does not work with this daemon: $(echo "$v" | tail -1)"; fi
done
DOCKER=(/usr/bin/docker -H "unix://$SOCK")
# `d` is the client on our socket, as a command (timeout(1) cannot run shell functions).
mkdir -p "$TMP/bin"
printf '#!/bin/sh\nexec /usr/bin/docker -H "unix://%s" "$@"\n' "$SOCK" >"$TMP/bin/d"
chmod +x "$TMP/bin/d"
PATH=$TMP/bin:$PATH

cap d info --format '{{json .Runtimes}}'
case $OUT in *'"kata"'*) pass "dockerd lists the kata runtime (features call at start-up)" ;;
             *) fail "dockerd lists the kata runtime" "got $OUT $ERR" ;; esac

make_busybox_tar "$TMP/rootfs.tar"
IMG=kata-e2e/busybox:1
cap d import "$TMP/rootfs.tar" "$IMG"
[ $RC = 0 ] && pass "docker import busybox rootfs" || { fail "docker import" "$ERR"; summary docker; exit 1; }
ls -A /var/run/docker/runtime-runc 2>/dev/null | sort >"$TMP/host-runtime-runc.before"

R=(--runtime kata)

# ---------------------------------------------------------------- run
step "docker run"
t=$SECONDS; cap d run --rm "${R[@]}" "$IMG" echo hi
check "run --rm IMG echo hi (default network)" 0 "hi"
say "        ($((SECONDS - t)) s)"

# The rest needs a network mode that works; the failures above/below say why the
# default one does not.
NET=()
if [ "$RC" != 0 ]; then
    for n in "--network none" "--network host"; do
        cap d run --rm "${R[@]}" $n "$IMG" echo hi
        if [ "$RC" = 0 ]; then NET=($n); break; fi
        fail "run --rm $n IMG echo hi" "rc=$RC: $ERR"
    done
    note "the remaining checks use ${NET[*]:-the default network} (the default network fails, see above)"
fi
K=("${R[@]}" "${NET[@]}")

cap d run --rm "${K[@]}" "$IMG" sh -c 'exit 3'
check "run: exit status 3 of sh -c 'exit 3'" 3 ""
cap d run --rm "${K[@]}" "$IMG" sh -c 'echo out; echo err >&2; exit 0'
check "run: stdout" 0 "out"
[ "$ERR" = err ] && pass "run: stderr" || fail "run: stderr" "got $(printf %q "$ERR")"
cap d run --rm "${K[@]}" "$IMG" no-such-command
[ "$RC" = 127 ] && pass "run: missing command exits 127" || fail "run: missing command exits 127" "rc=$RC: $ERR"
capin $'line1\nline2\n' d run --rm -i "${K[@]}" "$IMG" sh -c 'cat; exit 2'
check "run -i: stdin is relayed, then exit status 2" 2 $'line1\nline2'
cap d run --rm -t "${K[@]}" "$IMG" sh -c '[ -t 0 ] && [ -t 1 ] && echo tty-yes'
check "run -t: stdin/stdout are a terminal" 0 "tty-yes"
tty_session "${DOCKER[*]} run --rm -it ${K[*]} $IMG sh" $'echo in-$((6*7))\nexit 6\n'
if [ "$RC" = 6 ] && grep -qx 'in-42' <<<"$OUT"; then pass "run -it under a pty (script): interactive sh, exit 6"
else fail "run -it under a pty" "rc=$RC out: $(tail -3 <<<"$OUT" | tr '\n' '|')"; fi
cap d run --rm "${K[@]}" -u 65534 -w /tmp -e FOO=bar "$IMG" sh -c 'echo $(id -u) $(pwd) $FOO'
check "run -u -w -e" 0 "65534 /tmp bar"

# ---------------------------------------------------------------- detached, logs, exec
step "run -d, logs, exec"
cap d run -d --name e2e-d "${K[@]}" "$IMG" sh -c 'echo started; trap "echo got-USR1" USR1; while true; do sleep 1; done'
CID=$OUT
[ "$RC" = 0 ] && pass "run -d" || fail "run -d" "rc=$RC: $ERR"
sleep 1
cap d logs e2e-d
check "logs" 0 "started"
t=$SECONDS; cap d exec e2e-d echo from-exec
check "exec: output" 0 "from-exec"
cap d exec e2e-d sh -c 'exit 5'
check "exec: exit status 5" 5 ""
cap d exec e2e-d no-such-command
[ "$RC" = 126 ] && pass "exec: missing command exits 126 (as with runc)" || fail "exec: missing command" "rc=$RC: $ERR"
capin 'piped' d exec -i e2e-d cat
check "exec -i: stdin" 0 "piped"
cap d exec -t e2e-d sh -c '[ -t 1 ] && echo tty-yes'
check "exec -t" 0 "tty-yes"
tty_session "${DOCKER[*]} exec -it e2e-d sh" $'[ -t 0 ] && echo exec-$((6*7))\nexit 9\n'
if [ "$RC" = 9 ] && grep -qx 'exec-42' <<<"$OUT"; then pass "exec -it under a pty (script): interactive sh, exit 9"
else fail "exec -it under a pty" "rc=$RC out: $(tail -3 <<<"$OUT" | tr '\n' '|')"; fi
cap d exec -u 65534 -w /tmp -e FOO=bar e2e-d sh -c 'echo $(id -u) $(pwd) $FOO'
check "exec -u -w -e" 0 "65534 /tmp bar"
cap d exec -d e2e-d sh -c 'echo detached > /tmp/d'
sleep 0.5; cap d exec e2e-d cat /tmp/d
check "exec -d" 0 "detached"

cap d top e2e-d
if [ "$RC" = 0 ] && [ "$(wc -l <<<"$OUT")" -ge 2 ]; then
    pass "top: exit 0 with a process table"
    grep -q 'sleep\|while' <<<"$OUT" ||
        note "top lists host processes standing for the container, not its own:" "$(sed -n 2p <<<"$OUT" | cut -c1-150)"
else fail "top" "rc=$RC: $ERR"; fi

cap d kill -s USR1 e2e-d
sleep 1.5; cap d logs e2e-d
check "kill -s USR1 reaches the container's handler" 0 $'started\ngot-USR1'

# ---------------------------------------------------------------- pause
step "pause, unpause"
cap d pause e2e-d
[ "$RC" = 0 ] && pass "pause" || fail "pause" "rc=$RC: $ERR"
cap d inspect -f '{{.State.Status}}' e2e-d
check "inspect: paused" 0 "paused"
cap d exec e2e-d true
[ "$RC" != 0 ] && pass "exec refused while paused (docker's rule)" || fail "exec while paused" "unexpectedly worked"
cap d unpause e2e-d
[ "$RC" = 0 ] && pass "unpause" || fail "unpause" "rc=$RC: $ERR"
cap d exec e2e-d echo after-unpause
check "exec after unpause" 0 "after-unpause"

shared_lifecycle_checks d "-f"
shared_security_checks d

# ---------------------------------------------------------------- cp, restart, update, stats
step "cp, restart, update, stats"
cap d run -d --name e2e-misc "${K[@]}" -m 300m "$IMG" sh -c 'echo boot; while true; do sleep 1; done'
sleep 1
echo cp-in >"$TMP/cpin"
cap d cp "$TMP/cpin" e2e-misc:/tmp/cpin
cap d exec e2e-misc cat /tmp/cpin
check "cp host -> container" 0 "cp-in"
cap d exec e2e-misc sh -c 'echo cp-out > /tmp/cpout'
cap d cp e2e-misc:/tmp/cpout "$TMP/cpout"
[ "$(cat "$TMP/cpout" 2>/dev/null)" = cp-out ] && pass "cp container -> host" || fail "cp container -> host" "$ERR"
CG='d=/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup); cat $d/'
cap d exec e2e-misc sh -c "${CG}memory.max"
check "run -m 300m: memory.max in the guest" 0 "314572800"
cap d update --cpus 0.5 e2e-misc
[ "$RC" = 0 ] && pass "update --cpus 0.5" || fail "update --cpus 0.5" "rc=$RC: $ERR"
cap d exec e2e-misc sh -c "${CG}cpu.max"
check "update --cpus 0.5: cpu.max" 0 "50000 100000"
cap d exec e2e-misc sh -c "${CG}memory.max"
check "update --cpus keeps the memory limit (docker sends memory.limit 0 = unchanged)" 0 "314572800"
cap d update --memory 256m --memory-swap 512m e2e-misc
[ "$RC" = 0 ] && pass "update --memory 256m --memory-swap 512m" || fail "update --memory 256m --memory-swap 512m" "rc=$RC: $ERR"
cap d exec e2e-misc sh -c "${CG}memory.max"
check "update --memory: memory.max" 0 "268435456"
cap d stats --no-stream --format '{{.Name}}' e2e-misc
check "stats --no-stream" 0 "e2e-misc"
cap d restart -t 1 e2e-misc
[ "$RC" = 0 ] && pass "restart" || fail "restart" "rc=$RC: $ERR"
sleep 1
cap d logs e2e-misc
check "restart: the process ran twice" 0 $'boot\nboot'
cap d exec e2e-misc echo after-restart
check "exec after restart" 0 "after-restart"
cap d rm -f e2e-misc

# ---------------------------------------------------------------- networking
step "networking"
LO='ip -o link show lo; ip -o -4 addr show lo'
cap d run --rm "${R[@]}" --network none "$IMG" sh -c "$LO"
how=""
if [ "$RC" != 0 ]; then  # past the sysctl failure, to see the loopback device
    how=" (with --security-opt systempaths=unconfined)"
    cap d run --rm "${R[@]}" --network none --security-opt systempaths=unconfined "$IMG" sh -c "$LO"
fi
if [ "$RC" = 0 ] && grep -q ',UP' <<<"$OUT" && grep -q 127.0.0.1 <<<"$OUT"; then
    pass "--network none$how: lo is up with 127.0.0.1 (as with runc)"
else fail "--network none$how: lo up with 127.0.0.1" "rc=$RC out=$(tr '\n' '|' <<<"$OUT") $ERR"; fi
cap d run --rm "${R[@]}" "$IMG" sh -c 'ip -o -4 addr show eth0'
if [ "$RC" = 0 ] && grep -q 'inet 172\.17\.' <<<"$OUT"; then pass "default network: eth0 has a 172.17 address"
else fail "default network: eth0 with a bridge address" "rc=$RC out=$(tr '\n' '|' <<<"$OUT")" "stderr: $ERR"; fi
# Past the sysctl failure (privileged has no read-only /proc/sys): what the network hook does.
cap d run --rm "${R[@]}" --privileged "$IMG" sh -c 'ip -o -4 addr show eth0'
if [ "$RC" = 0 ] && grep -q 'inet 172\.17\.' <<<"$OUT"; then pass "default network, --privileged: eth0 has a 172.17 address"
else fail "default network, --privileged: eth0 with a bridge address" "rc=$RC out=$(tr '\n' '|' <<<"$OUT")" "stderr: $ERR"; fi
bridge_network_checks d "$NS" "-f"
cap d run --rm "${R[@]}" --network host "$IMG" sh -c 'ip -o link | grep -v " lo:" | wc -l'
note "--network host gives the container a network namespace of its own (${OUT:-?} non-lo links), never the host's: a VM cannot share the host's network"

# ---------------------------------------------------------------- nothing left behind
step "nothing left behind"
cap d ps -aq
[ -z "$OUT" ] && pass "no containers left" || fail "no containers left" "$OUT"
sleep 1
left=$(vm_procs_under "$TMP" | grep -v containerd-shim)
[ -z "$left" ] && pass "no keeper/qemu/virtiofsd processes left" || fail "no keeper/qemu/virtiofsd processes left" "$left"
left=$(ls -A "$RTROOT" 2>/dev/null)
[ -z "$left" ] && pass "no state dirs under $RTROOT" || fail "no state dirs under the runtime root" "$left"
left=$(ls -A "$EXEC/containerd/daemon/io.containerd.runtime.v2.task/moby" 2>/dev/null)
[ -z "$left" ] && pass "no bundles left under the exec-root" || fail "no bundles left under the exec-root" "$left"
ls -A /var/run/docker/runtime-runc 2>/dev/null | sort >"$TMP/host-runtime-runc.after"
cmp -s "$TMP/host-runtime-runc.before" "$TMP/host-runtime-runc.after" && pass "nothing new under /var/run/docker/runtime-runc" ||
    fail "nothing new under /var/run/docker/runtime-runc" "$(diff "$TMP/host-runtime-runc.before" "$TMP/host-runtime-runc.after")"
left=$(mounts_under "$TMP" | grep -v -x -e "$DATA" -e "$EXEC/netns/default")
[ -z "$left" ] && pass "no mounts under the temp dir besides dockerd's own (data-root, netns/default)" || fail "no container mounts left" "$left"
left=$(ls -A "$EXEC/netns" 2>/dev/null | grep -v -x default)
[ -z "$left" ] && pass "no network namespace files left under exec-root/netns" ||
    note "network namespace files still under exec-root/netns: libnetwork removes them in a garbage collection every 60 s (runc too)" "$left"

step "dockerd stops with a container running"
cap d run -d --name e2e-last "${K[@]}" "$IMG" sleep 1000
sleep 1
KPID=$(cat "$EXEC/containerd/daemon/io.containerd.runtime.v2.task/moby/$OUT/init.pid" 2>/dev/null)
kill -TERM "$DPID"
if wait_gone "$DPID" 30; then pass "dockerd exits on SIGTERM with a kata container running"; else fail "dockerd exits on SIGTERM" "still running"; fi
sleep 2
left=$(vm_procs_under "$TMP")
[ -z "$left" ] && pass "no keeper/qemu/virtiofsd/shim left after dockerd stopped (keeper was $KPID)" || fail "processes left after dockerd stopped" "$left"
# dockerd itself leaves exec-root/netns/default mounted when it exits (with runc too).
left=$(mounts_under "$TMP" | grep -v -x "$EXEC/netns/default")
[ -z "$left" ] && pass "no mounts under the temp dir after dockerd stopped (besides dockerd's netns/default)" ||
    fail "mounts left after dockerd stopped" "$left"
DPID=""

summary docker
[ "$FAILS" = 0 ]
