# Run inside the L1 guest: the default nested end-to-end check (Tests/EndToEndTests/
# NestedVirtualizationTests.swift), two containers on the built-in VMM, chosen by backend = auto.
# Cases are framed by @@begin/@@end (lib.sh).
. /nested/lib.sh
mkdir -p "$ROOT"

# What check says here: svm, kvm_amd, the probe, and auto choosing the built-in VMM.
case_ check rt check

# Output, uname, the vCPU count and an exit status from one `run` (one L2 boot).
bundle /b/run sh -c "echo hello from the built-in VMM; uname -r; nproc; exit 3"
case_ run rt --debug run --bundle /b/run c-run

# A long-running container: exec into it, kill it, delete it (a second L2 boot).
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
case_ leftovers leftovers
