#!/bin/bash
# Runs the whole test suite: unit tests, guest-init tests on the host, built-in VMM tests
# through /dev/kvm, and end-to-end tests through the installed kata-runtime (QEMU backend).
# Tests that need root, /dev/kvm, QEMU or the installed guest image skip with a printed reason.
# Extra arguments go to `swift test` (e.g. --filter EndToEndTests).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v swift >/dev/null; then export PATH=/opt/swift/usr/bin:$PATH; fi
swift build --build-tests >&2 || exit 1
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
swift test --skip-build --disable-swift-testing "$@" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
passed=$(grep -c "^Test Case .* passed" "$LOG")
failed=$(grep -c "^Test Case .* failed" "$LOG")
skipped=$(grep -c "^Test Case .* skipped" "$LOG")
grep -E "^/.*: (Test skipped|error)" "$LOG" | sed 's/^/  /' | head -40
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$status" -eq 0 ] && [ "$failed" -ne 0 ]; then status=1; fi
exit "$status"
