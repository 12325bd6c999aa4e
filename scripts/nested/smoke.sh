# Run inside the L1 guest (scripts/nested/build-l1-image.sh): containers on kata-runtime's
# built-in VMM over the L1's KVM. Each case is framed by @@begin/@@end (see lib.sh).
. /nested/lib.sh
mkdir -p "$ROOT"

# backend = auto in the L1's configuration: the L1 has svm and kvm_amd, so the built-in VMM.
case_ env sh -c "$KATA env | grep -E 'Backend|BackendReason'"

bundle /b/echo echo hello from the built-in VMM
case_ run-echo rt run --bundle /b/echo c-echo

bundle /b/uname uname -r
case_ run-uname rt run --bundle /b/uname c-uname

bundle /b/exit sh -c "exit 3"
case_ run-exit3 rt run --bundle /b/exit c-exit

bundle /b/nproc nproc
case_ run-nproc rt run --bundle /b/nproc c-nproc

# A long-running container: exec into it, then kill it.
sleeper_lifecycle
case_ list rt list
case_ leftovers leftovers
