#!/bin/bash
# End-to-end: podman (Debian's 4.3, through conmon) with kata-runtime, used as a user would.
#
#   scripts/clients/podman-e2e.sh          # KATA=/path/to/kata-runtime to test another binary
#   (podman runs the runtime with a clean environment, so KATA_CONFIG does not reach it: to
#   test a private configuration, make KATA a script that sets KATA_CONFIG and execs the binary)
#
# Every podman call gets a private --root/--runroot/--tmpdir/--network-config-dir under a
# temporary directory and runs inside a private network namespace, so the netavark bridge,
# its firewall rules and the containers' network namespaces never touch the host's network.
# The runtime is `--runtime $KATA` with no --runtime-flag: podman passes no --root, so the
# runtime keeps its state in its default /run/kata-runtime; the checks look only at this
# run's container IDs there. Prints PASS/FAIL/NOTE lines and a summary; exits 1 if
# anything failed, 0 otherwise (also when skipped).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" != 0 ]; then echo "SKIP podman-e2e: needs root (podman with a private store, network namespaces)"; exit 0; fi
TMP=$(mktemp -d /tmp/kata-podman-e2e.XXXXXX)
. "$HERE/lib.sh"
[ -x "$KATA" ] || { echo "SKIP podman-e2e: $KATA not found (run scripts/setup.sh)"; rm -rf "$TMP"; exit 0; }

NS=kata-podman-e2e-$$
RTROOT=/run/kata-runtime                 # the runtime's default --root; podman passes none
CPNAME=kata-podman-e2e-cp-$$-$RANDOM     # a file name no one else uses, for the cp checks

# Every container ID this run created (from podman's event log).
all_ids() { timeout 30 p events --stream=false --filter type=container --format '{{.ID}}' 2>/dev/null | sort -u; }

cleanup() {
    set +e
    if [ -x "$TMP/bin/p" ]; then
        timeout 60 p rm -af -t 0 >/dev/null 2>&1
        local id pid c
        for id in $(all_ids); do
            while read -r pid c; do [ -n "$pid" ] && { say "cleanup: killing leftover $c $pid"; kill -KILL "$pid"; }; done < <(vm_procs_under "$id")
            [ -d "$RTROOT/$id" ] && { say "cleanup: removing $RTROOT/$id"; rm -rf "${RTROOT:?}/$id"; }
        done
    fi
    rm -f "/tmp/$CPNAME" "/tmp/$CPNAME.out"
    local m
    for m in $(mounts_under "$TMP" | sort -r); do umount -l "$m"; done
    ip netns del "$NS" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- setup
step "setup"
if ! command -v podman >/dev/null || ! command -v conmon >/dev/null; then
    apt_install podman || { fail "install podman"; summary podman; exit 1; }
fi
for t in script ip nsenter; do command -v $t >/dev/null || { echo "SKIP podman-e2e: $t missing"; exit 0; }; done
say "$(podman --version), $(conmon --version | head -1)"
say "kata-runtime: $($KATA --version | head -1) ($KATA)"
ip netns add "$NS" && ip -n "$NS" link set lo up || { fail "create network namespace $NS"; summary podman; exit 1; }

# `p` is podman with the private store, inside the private network namespace, as a command
# (timeout(1) cannot run shell functions). nsenter enters only the network namespace.
mkdir -p "$TMP/bin"
cat >"$TMP/bin/p" <<EOF
#!/bin/sh
exec nsenter --net=/run/netns/$NS podman --root "$TMP/root" --runroot "$TMP/runroot" --tmpdir "$TMP/tmp" \\
    --network-config-dir "$TMP/net" --volumepath "$TMP/volumes" --cgroup-manager cgroupfs --events-backend file "\$@"
EOF
chmod +x "$TMP/bin/p"
PATH=$TMP/bin:$PATH

make_busybox_tar "$TMP/rootfs.tar"
IMG=localhost/kata-e2e/busybox:1
cap p import -q "$TMP/rootfs.tar" "$IMG"
[ $RC = 0 ] && pass "podman import busybox rootfs" || { fail "podman import" "$ERR"; summary podman; exit 1; }

R=(--runtime "$KATA")
# platform.md: runc needs these here (the host's hard nofile limit is below podman's
# default). kata-runtime sets rlimits inside the VM, so it is checked without them too.
U=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

# ---------------------------------------------------------------- run
step "podman run"
t=$SECONDS; cap p run --rm "${R[@]}" "${U[@]}" "$IMG" echo hi
check "run --rm IMG echo hi (default network)" 0 "hi"
say "        ($((SECONDS - t)) s)"
NET=()
if [ "$RC" != 0 ]; then
    for n in "--network none" "--network host"; do
        cap p run --rm "${R[@]}" "${U[@]}" $n "$IMG" echo hi
        if [ "$RC" = 0 ]; then NET=($n); break; fi
        fail "run --rm $n IMG echo hi" "rc=$RC: $ERR"
    done
    note "the remaining checks use ${NET[*]:-the default network} (the default network fails, see above)"
fi
K=("${R[@]}" "${U[@]}" "${NET[@]}")
cap p run --rm "${R[@]}" "${NET[@]}" "$IMG" sh -c 'ulimit -n'
check "run without --ulimit (podman's default nofile 1048576 is set inside the VM)" 0 "1048576"

cap p run --rm "${K[@]}" "$IMG" sh -c 'exit 3'
check "run: exit status 3 of sh -c 'exit 3'" 3 ""
cap p run --rm "${K[@]}" "$IMG" sh -c 'echo out; echo err >&2'
check "run: stdout" 0 "out"
[ "$ERR" = err ] && pass "run: stderr" || fail "run: stderr" "got $(printf %q "$ERR")"
cap p run --rm "${K[@]}" "$IMG" no-such-command
[ "$RC" = 127 ] && pass "run: missing command exits 127" || fail "run: missing command exits 127" "rc=$RC: $ERR"
capin $'line1\nline2\n' p run --rm -i "${K[@]}" "$IMG" sh -c 'cat; exit 2'
check "run -i: stdin is relayed, then exit status 2" 2 $'line1\nline2'
cap p run --rm -t "${K[@]}" "$IMG" sh -c '[ -t 0 ] && [ -t 1 ] && echo tty-yes'
check "run -t: stdin/stdout are a terminal" 0 "tty-yes"
tty_session "p run --rm -it ${K[*]} $IMG sh" $'echo in-$((6*7))\nexit 6\n'
if [ "$RC" = 6 ] && grep -qx 'in-42' <<<"$OUT"; then pass "run -it under a pty (script): interactive sh, exit 6"
else fail "run -it under a pty" "rc=$RC out: $(tail -3 <<<"$OUT" | tr '\n' '|')"; fi
cap p run --rm "${K[@]}" -u 65534 -w /tmp -e FOO=bar "$IMG" sh -c 'echo $(id -u) $(pwd) $FOO'
check "run -u -w -e" 0 "65534 /tmp bar"

# ---------------------------------------------------------------- detached, logs, exec
step "run -d, logs, exec"
cap p run -d --name e2e-d "${K[@]}" "$IMG" sh -c 'echo started; trap "echo got-USR1" USR1; while true; do sleep 1; done'
[ "$RC" = 0 ] && pass "run -d" || fail "run -d" "rc=$RC: $ERR"
sleep 1
cap p logs e2e-d
check "logs" 0 "started"
cap p exec e2e-d echo from-exec
check "exec: output" 0 "from-exec"
cap p exec e2e-d sh -c 'exit 5'
check "exec: exit status 5" 5 ""
cap p exec e2e-d no-such-command
[ "$RC" = 127 ] && pass "exec: missing command exits 127 (as with runc)" || fail "exec: missing command" "rc=$RC: $ERR"
capin 'piped' p exec -i e2e-d cat
check "exec -i: stdin" 0 "piped"
cap p exec -t e2e-d sh -c '[ -t 1 ] && echo tty-yes'
check "exec -t" 0 "tty-yes"
tty_session "p exec -it e2e-d sh" $'[ -t 0 ] && echo exec-$((6*7))\nexit 9\n'
if [ "$RC" = 9 ] && grep -qx 'exec-42' <<<"$OUT"; then pass "exec -it under a pty (script): interactive sh, exit 9"
else fail "exec -it under a pty" "rc=$RC out: $(tail -3 <<<"$OUT" | tr '\n' '|')"; fi
cap p exec -u 65534 -w /tmp -e FOO=bar e2e-d sh -c 'echo $(id -u) $(pwd) $FOO'
check "exec -u -w -e" 0 "65534 /tmp bar"
cap p exec -d e2e-d sh -c 'echo detached > /tmp/d'
sleep 0.5; cap p exec e2e-d cat /tmp/d
check "exec -d" 0 "detached"

cap p top e2e-d
n=$(($(wc -l <<<"$OUT") - 1))
if [ "$RC" = 0 ] && grep -q 'sleep\|while' <<<"$OUT" && [ $n -lt 10 ]; then pass "top: the container's processes"
else fail "top: the container's processes" "rc=$RC, $n rows, e.g.: $(sed -n 2p <<<"$OUT" | tr -s ' ' | cut -c1-100)" "$ERR"; fi

cap p kill -s USR1 e2e-d
sleep 1.5; cap p logs e2e-d
check "kill -s USR1 reaches the container's handler" 0 $'started\ngot-USR1'

# ---------------------------------------------------------------- pause
step "pause, unpause"
cap p pause e2e-d
[ "$RC" = 0 ] && pass "pause" || fail "pause" "rc=$RC: $ERR"
cap p inspect -f '{{.State.Status}}' e2e-d
check "inspect: paused" 0 "paused"
cap p unpause e2e-d
[ "$RC" = 0 ] && pass "unpause" || fail "unpause" "rc=$RC: $ERR"
cap p exec e2e-d echo after-unpause
check "exec after unpause" 0 "after-unpause"

shared_lifecycle_checks p "-f -t 0"
shared_security_checks p

# ---------------------------------------------------------------- cp, restart, stats
step "cp, restart, stats"
cap p run -d --name e2e-misc "${K[@]}" "$IMG" sh -c 'echo boot; while true; do sleep 1; done'
sleep 1
# The container path is /tmp/$CPNAME, a name unique to this run: if podman copies into the
# wrong mount namespace (the host's), the file lands harmlessly in the host's /tmp.
echo cp-in >"$TMP/cpin"
cap p cp "$TMP/cpin" "e2e-misc:/tmp/$CPNAME"
cp_rc=$RC cp_err=$ERR
cap p exec e2e-misc cat "/tmp/$CPNAME"
if [ "$OUT" = cp-in ]; then pass "cp host -> running container"
elif [ -e "/tmp/$CPNAME" ]; then
    fail "cp host -> running container" "podman cp exited $cp_rc but wrote the HOST's /tmp/$CPNAME, not the container's"
else fail "cp host -> running container" "rc=$cp_rc: $cp_err; in the container: $ERR"; fi
rm -f "/tmp/$CPNAME"
cap p exec e2e-misc sh -c "echo cp-out > /tmp/$CPNAME.out"
cap p cp "e2e-misc:/tmp/$CPNAME.out" "$TMP/cpout"
[ "$(cat "$TMP/cpout" 2>/dev/null)" = cp-out ] && pass "cp running container -> host" ||
    fail "cp running container -> host" "rc=$RC: $(tail -1 <<<"$ERR")"
cap p stats --no-stream --format '{{.Name}}' e2e-misc
check "stats --no-stream" 0 "e2e-misc"
cap p restart -t 1 e2e-misc
[ "$RC" = 0 ] && pass "restart" || fail "restart" "rc=$RC: $ERR"
sleep 1
cap p logs e2e-misc
check "restart: the process ran twice" 0 $'boot\nboot'
cap p exec e2e-misc echo after-restart
check "exec after restart" 0 "after-restart"
cap p stop -t 1 e2e-misc
echo cp-stopped >"$TMP/cpin2"
cap p cp "$TMP/cpin2" e2e-misc:/tmp/stopped
cap p start e2e-misc
sleep 1
cap p exec e2e-misc cat /tmp/stopped
check "cp into a stopped container, then start" 0 "cp-stopped"
cap p rm -f -t 0 e2e-misc

# ---------------------------------------------------------------- networking
step "networking"
LO='ip -o link show lo; ip -o -4 addr show lo'
cap p run --rm "${R[@]}" "${U[@]}" --network none "$IMG" sh -c "$LO"
how=""
if [ "$RC" != 0 ]; then  # past the sysctl failure, to see the loopback device
    how=" (with --security-opt unmask=ALL)"
    cap p run --rm "${R[@]}" "${U[@]}" --network none --security-opt unmask=ALL "$IMG" sh -c "$LO"
fi
if [ "$RC" = 0 ] && grep -q ',UP' <<<"$OUT" && grep -q 127.0.0.1 <<<"$OUT"; then
    pass "--network none$how: lo is up with 127.0.0.1 (as with runc)"
else fail "--network none$how: lo up with 127.0.0.1" "rc=$RC out=$(tr '\n' '|' <<<"$OUT") $ERR"; fi
cap p run --rm "${R[@]}" "${U[@]}" "$IMG" sh -c 'ip -o -4 addr show eth0'
if [ "$RC" = 0 ] && grep -q 'inet 10\.88\.' <<<"$OUT"; then pass "default network: eth0 has a 10.88 address"
else fail "default network: eth0 with a bridge address" "rc=$RC out=$(tr '\n' '|' <<<"$OUT")" "stderr: $ERR"; fi
# Past the sysctl failure (privileged has no read-only /proc/sys): what reaches the guest.
cap p run -d --name e2e-net "${R[@]}" --privileged "$IMG" sleep 1000
cap p inspect -f '{{.NetworkSettings.IPAddress}}' e2e-net
ip_podman=$OUT
cap p exec e2e-net sh -c 'ip -o -4 addr show eth0'
if [ "$RC" = 0 ] && grep -q 'inet 10\.88\.' <<<"$OUT"; then pass "default network, --privileged: eth0 has a 10.88 address"
else fail "default network, --privileged: eth0 with a bridge address" "podman says the container has $ip_podman; inside: rc=$RC $(tr '\n' '|' <<<"$OUT") $ERR"; fi
cap p rm -f -t 0 e2e-net
bridge_network_checks p "$NS" "-f -t 0"
cap p run --rm "${R[@]}" "${U[@]}" --network host "$IMG" sh -c 'ip -o link | grep -v " lo:" | wc -l'
note "--network host gives the container a network namespace of its own (${OUT:-?} non-lo links), never the host's: a VM cannot share the host's network"

# ---------------------------------------------------------------- nothing left behind
step "nothing left behind"
cap p ps -aq
[ -z "$OUT" ] && pass "no containers left" || fail "no containers left" "$OUT"
sleep 1
IDS=$(all_ids)
say "        this run created $(wc -w <<<"$IDS") containers"
left="" dirs=""
for id in $IDS; do
    left+=$(vm_procs_under "$id")
    [ -e "$RTROOT/$id" ] && dirs+="$RTROOT/$id "
done
[ -z "$left" ] && pass "no conmon/keeper/qemu/virtiofsd processes left" || fail "no processes left" "$left"
[ -z "$dirs" ] && pass "no state dirs left under $RTROOT" || fail "no state dirs left under $RTROOT" "$dirs"
left=$(mounts_under "$TMP")
[ -z "$left" ] && pass "no mounts under the temp dir" || fail "no mounts under the temp dir" "$left"
left=$(ls /run/netns 2>/dev/null | grep -v -x "$NS" | grep '^netns-' || true)
[ -z "$left" ] && pass "no podman network namespaces left in /run/netns" || note "network namespaces in /run/netns (maybe another user's)" "$left"

summary podman
[ "$FAILS" = 0 ]
