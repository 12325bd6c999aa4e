# Helpers for the scripts run inside the L1 guest (sourced by /nested/test.sh).
# Output protocol, parsed by scripts/nested/run.sh users (Tests/EndToEndTests/NestedVirtualizationTests.swift):
#   @@begin NAME                 a case starts
#   (the command's stdout and stderr, as is)
#   @@end NAME status=N ms=M     it ended with exit status N after M milliseconds
#   @@info KEY VALUE             a measurement or fact
#   @@tick UPTIME                the L1's heartbeat (every 15 s, from its /init; anywhere)
KATA=${KATA:-/usr/local/bin/kata-runtime}
ROOT=${ROOT:-/run/kata-nested}

now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# bundle DIR ARGS...: a busybox bundle at DIR running ARGS (as JSON strings; no quotes in them).
bundle() {
    dir=$1; shift
    mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/tmp" "$dir/rootfs/etc"
    cp /bin/busybox "$dir/rootfs/bin/busybox"
    for t in sh echo cat uname true false sleep nproc ls id hostname env kill grep wc head; do
        ln -sf busybox "$dir/rootfs/bin/$t"
    done
    args=""
    for a in "$@"; do args="$args${args:+, }\"$a\""; done
    cat > "$dir/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false, "user": {"uid": 0, "gid": 0}, "args": [$args],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/", "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": false},
  "hostname": "kata-nested",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
  }
}
EOF
}

CASE_TIMEOUT=${CASE_TIMEOUT:-240}

# case NAME CMD...: runs CMD (killed after CASE_TIMEOUT seconds), framed by @@begin/@@end with
# its status and wall time. When it fails, the tail of every container's guest console follows
# as "@@console ID" lines (the state directories of failed or killed runs keep console.log).
case_() {
    name=$1; shift
    echo "@@begin $name"
    t0=$(now_ms)
    # A child shell, so that CMD may be one of this file's functions (rt).
    timeout -s KILL "$CASE_TIMEOUT" sh -c '. /nested/lib.sh; "$@"' case "$@" 2>&1
    st=$?
    echo "@@end $name status=$st ms=$(( $(now_ms) - t0 ))"
    if [ "$st" != 0 ]; then
        for log in "$ROOT"/*/console.log; do
            [ -f "$log" ] || continue
            id=$(basename "$(dirname "$log")")
            tail -n "${CONSOLE_LINES:-60}" "$log" | sed "s/^/@@console $id: /"
        done
    fi
    return 0
}

# rt ARGS...: kata-runtime with this script's --root.
rt() { "$KATA" --root "$ROOT" "$@"; }

# console_of ID: the built-in VMM's console log of a container (for failures).
console_of() { cat "$ROOT/$1/console.log" 2>/dev/null | tail -${2:-40}; }

# A long-running container through the split lifecycle: create, start, exec (status 5), kill,
# wait for "stopped", delete (one L2 boot). Cases: create start exec kill state-after-kill delete.
sleeper_lifecycle() {
    bundle /b/sleep sleep 600
    case_ create rt create --bundle /b/sleep c-sleep
    case_ start rt start c-sleep
    case_ exec rt exec c-sleep sh -c "echo exec says hi; exit 5"
    case_ kill rt kill c-sleep KILL
    for i in $(seq 1 100); do
        rt state c-sleep 2>/dev/null | grep -q '"status": *"stopped"' && break
        sleep 0.2
    done
    case_ state-after-kill sh -c "$KATA --root $ROOT state c-sleep | grep status"
    case_ delete rt delete c-sleep
}

# leftovers: waits up to 10 s for kata-runtime processes to end (a keeper may still be tearing
# its VM down), then prints "state=N processes=M" and the remaining processes, if any.
leftovers() {
    for i in $(seq 1 50); do
        [ "$(ps -o pid,args | grep -c '[k]ata-runtime')" = 0 ] && break
        sleep 0.2
    done
    echo "state=$(ls "$ROOT" | wc -l) processes=$(ps -o pid,args | grep -c '[k]ata-runtime')"
    ps -o pid,ppid,stat,args | grep '[k]ata-runtime'
    return 0
}
