# Run inside the L1 guest by scripts/bench/nested-builtin.sh: RUNS sequential `kata-runtime run`s
# of /bin/true on the built-in VMM, each reported as one line
#   @@bench total_ms=T connected_ms=C ready_ms=R created_ms=K
# (wall time of the run; then, from the keeper's --debug log, when the agent port was opened,
# the guest agent said ready, the container was created; all from VM start).
# --debug would also make the guest kernel print its whole log on the serial port (kata.debug),
# each character a VM exit; "quiet" after it keeps the console as in a normal run.
. /nested/lib.sh
mkdir -p "$ROOT"
sed 's/^\[hypervisor\]$/[hypervisor]\nkernel_params = "quiet"/' /etc/kata-runtime/configuration.toml > /etc/kata-runtime/bench.toml
export KATA_CONFIG=/etc/kata-runtime/bench.toml
RUNS=${RUNS:-5}   # scripts/bench/nested-builtin.sh puts RUNS=N in front of this script
bundle /b/true true
for i in $(seq 1 "$RUNS"); do
    t0=$(now_ms)
    rt --debug run --bundle /b/true "bench-$i" > /tmp/bench.log 2>&1
    st=$?
    t1=$(now_ms)
    field() { sed -n "s/.*$1 after \([0-9]*\) ms.*/\1/p" /tmp/bench.log | head -1; }
    echo "@@bench status=$st total_ms=$((t1 - t0)) connected_ms=$(field 'agent channel connected') ready_ms=$(field 'guest agent ready') created_ms=$(field 'container created')"
    [ "$st" = 0 ] || cat /tmp/bench.log
done
