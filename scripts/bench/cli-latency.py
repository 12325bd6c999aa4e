#!/usr/bin/env python3
"""Latency of runc-style CLI calls: kata-runtime against runc, same bundle, one run.

Medians over N calls (BENCH_RUNS, default 20), interleaved call by call:
  state      `state ID` of a running container
  exec       `exec ID /bin/true` (no tty) into a running container
  kill+del   `kill ID KILL` then `delete ID` of a running container (N/2 containers each)
Prints the medians and the kata/runc ratios; --markdown prints a row for docs/performance.md.
Targets (issue 4): state not slower than runc; exec at most 2x runc's.
Needs root, runc, busybox-static and the installed runtime (scripts/setup.sh).
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import make_bundle  # noqa: E402

N = int(os.environ.get("BENCH_RUNS", "20"))
KATA = os.environ.get("KATA_RUNTIME_BIN", "/usr/local/bin/kata-runtime")


def call(argv):
    t = time.monotonic()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.monotonic() - t
    if r.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {r.stderr.decode().strip()}")
    return dt * 1000


def main():
    if os.geteuid() != 0:
        sys.exit("run as root")
    work = tempfile.mkdtemp(prefix="kata-clibench-")
    roots = {"kata": os.path.join(work, "kata-root"), "runc": os.path.join(work, "runc-root")}
    bins = {"kata": KATA, "runc": "runc"}
    try:
        b = os.path.join(work, "bundle")
        os.makedirs(b)
        make_bundle(b, ["sleep", "1000"])
        for k in bins:
            subprocess.run([bins[k], "--root", roots[k], "run", "-d", "--bundle", b, "bench"], check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        res = {(k, m): [] for k in bins for m in ["state", "exec", "kill+delete"]}
        for i in range(N):
            for k in bins:
                res[(k, "state")].append(call([bins[k], "--root", roots[k], "state", "bench"]))
                res[(k, "exec")].append(call([bins[k], "--root", roots[k], "exec", "bench", "/bin/true"]))
        for i in range(max(5, N // 2)):
            for k in bins:
                subprocess.run([bins[k], "--root", roots[k], "run", "-d", "--bundle", b, f"kd{i}"], check=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                t = time.monotonic()
                call([bins[k], "--root", roots[k], "kill", f"kd{i}", "KILL"])
                # delete needs the container stopped: poll state as an engine would
                while json.loads(subprocess.run([bins[k], "--root", roots[k], "state", f"kd{i}"], capture_output=True).stdout)["status"] != "stopped":
                    time.sleep(0.005)
                call([bins[k], "--root", roots[k], "delete", f"kd{i}"])
                res[(k, "kill+delete")].append((time.monotonic() - t) * 1000)
        med = {key: statistics.median(v) for key, v in res.items()}
        print(f"runs: {N} (kill+delete: {max(5, N // 2)})")
        for m in ["state", "exec", "kill+delete"]:
            print(f"{m:12} kata {med[('kata', m)]:8.1f} ms   runc {med[('runc', m)]:8.1f} ms   ratio {med[('kata', m)] / med[('runc', m)]:.2f}")
        if "--markdown" in sys.argv:
            print("| " + " | ".join(f"{med[('kata', m)]:.1f} / {med[('runc', m)]:.1f} ({med[('kata', m)] / med[('runc', m)]:.2f}x)"
                                    for m in ["state", "exec", "kill+delete"]) + " |")
    finally:
        for k in bins:
            for c in ["bench"]:
                subprocess.run([bins[k], "--root", roots[k], "delete", "--force", c], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
