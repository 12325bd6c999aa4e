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
sleeper_lifecycle
case_ leftovers leftovers
