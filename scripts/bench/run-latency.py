#!/usr/bin/env python3
"""Start-up latency of `kata-runtime run` against its floor and against runc.

In one run, on the same busybox bundle, medians over N runs of:
  kata  `kata-runtime run` of /bin/true (create VM, boot, build container, run, tear down)
  bare  the same QEMU command line (read from a live container's qemu process) with the
        same virtiofsd, booting the same kernel to an init that resets the VM at once:
        the floor this backend cannot beat
  runc  `runc run` of /bin/true
Prints a table and the ratios; --markdown prints rows for docs/performance.md.
Needs root, the installed runtime (scripts/setup.sh), runc, gcc and busybox-static.
"""
import json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import make_bundle  # noqa: E402

N = int(os.environ.get("BENCH_RUNS", "10"))
RUNTIME = os.environ.get("KATA_RUNTIME_BIN", "/usr/local/bin/kata-runtime")


def timed(cmd, **kw):
    t = time.monotonic()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    dt = time.monotonic() - t
    if r.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({r.returncode}): {r.stderr.decode().strip()}")
    return dt


def qemu_command_line(work, bundle):
    """The exact qemu argv the runtime uses, read from a running container."""
    root = os.path.join(work, "probe-root")
    subprocess.run([RUNTIME, "--root", root, "run", "-d", "--bundle", bundle, "probe"], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # QEMU runs with the container's state directory as its working directory.
        state_dir = os.path.realpath(os.path.join(root, "probe"))
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{pid}/cwd") != state_dir:
                    continue
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().rstrip(b"\0").split(b"\0")
                if argv[0].endswith(b"qemu-system-x86_64"):
                    return [a.decode() for a in argv]
            except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
                continue
        sys.exit("could not find the container's qemu process")
    finally:
        subprocess.run([RUNTIME, "--root", root, "delete", "--force", "probe"], stderr=subprocess.DEVNULL)


def reset_initrd(work):
    """An initramfs whose /init resets the VM immediately (reboot=t + -no-reboot ends QEMU)."""
    src = os.path.join(work, "reset.c")
    with open(src, "w") as f:
        f.write("#include <sys/reboot.h>\nint main(void){reboot(RB_AUTOBOOT);return 0;}\n")
    stage = os.path.join(work, "stage")
    os.makedirs(stage)
    subprocess.run(["gcc", "-static", "-O2", "-o", os.path.join(stage, "init"), src], check=True)
    out = os.path.join(work, "reset.cpio")
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([os.path.join(here, "..", "guest", "build-initramfs.sh"), os.path.join(stage, "init"), out], check=True)
    return out


def bare_boot(work, argv, initrd):
    d = tempfile.mkdtemp(dir=work)
    args = list(argv)
    args[args.index("-initrd") + 1] = initrd
    t = time.monotonic()
    vfs = subprocess.Popen(["/usr/lib/qemu/virtiofsd", "--socket-path=vfs.sock", "-o", f"source={d}",
                            "-o", "cache=auto", "-o", "sandbox=chroot", "--thread-pool-size=1"],
                           cwd=d, stderr=subprocess.DEVNULL)
    while not os.path.exists(os.path.join(d, "vfs.sock")):
        time.sleep(0.002)
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.path.join(d, "agent.sock"))
    s.listen(1)
    r = subprocess.run(args, cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    dt = time.monotonic() - t
    s.close()
    vfs.kill()
    vfs.wait()
    if r.returncode != 0:
        sys.exit(f"bare qemu failed: {r.stderr.decode().strip()}")
    return dt


def main():
    if os.geteuid() != 0:
        sys.exit("run as root")
    work = tempfile.mkdtemp(prefix="kata-bench-")
    try:
        bundle = os.path.join(work, "bundle")
        os.makedirs(bundle)
        make_bundle(bundle, ["true"])
        sleeper = os.path.join(work, "sleeper")
        os.makedirs(sleeper)
        make_bundle(sleeper, ["sleep", "1000"])
        argv = qemu_command_line(work, sleeper)
        initrd = reset_initrd(work)
        kata_root = os.path.join(work, "kata-root")
        runc_root = os.path.join(work, "runc-root")
        results = {"kata": [], "bare": [], "runc": []}
        for i in range(N):  # interleaved, so drift in machine load hits all three alike
            results["kata"].append(timed([RUNTIME, "--root", kata_root, "run", "--bundle", bundle, f"k{i}"]))
            results["bare"].append(bare_boot(work, argv, initrd))
            results["runc"].append(timed(["runc", "--root", runc_root, "run", "--bundle", bundle, f"r{i}"]))
        med = {k: statistics.median(v) * 1000 for k, v in results.items()}
        print(f"runs per measurement: {N}")
        print(f"qemu: {' '.join(argv)}")
        for k in ["kata", "bare", "runc"]:
            v = sorted(x * 1000 for x in results[k])
            print(f"{k:5} median {med[k]:8.1f} ms   min {v[0]:8.1f}   max {v[-1]:8.1f}")
        overhead = (med["kata"] - med["bare"]) / med["bare"] * 100
        print(f"kata / bare  = {med['kata'] / med['bare']:.3f}  (runtime overhead above the bare boot: {overhead:+.1f} %, target <= 10 %)")
        print(f"kata / runc  = {med['kata'] / med['runc']:.1f}")
        if "--markdown" in sys.argv:
            print(f"| {N} | {med['kata']:.0f} | {med['bare']:.0f} | {med['runc']:.0f} | {overhead:+.1f} % | {med['kata'] / med['runc']:.0f}x |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
