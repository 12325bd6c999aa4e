#!/usr/bin/env python3
"""Guest work of `kata-runtime run`, counted in code blocks QEMU's TCG had to translate.

Under TCG (this host's /dev/kvm is PVM) start-up time is dominated by translating guest code
the first time it runs: each new translation block costs several microseconds, running it
again costs little. So the number of blocks translated after the kernel starts /init is a
deterministic measure of the guest-side work, unaffected by the load on the machine (wall-clock
medians are not, see run-latency.py).

In one run, with QEMU's `-d in_asm` log:
  kata  `kata-runtime run` of /bin/true on a busybox bundle
  bare  the same QEMU command line booting the same kernel to an init that resets at once
Counts blocks from the kernel's run_init_process to the end of the VM, split into kernel and
user space; `--top N` lists the functions with the most blocks (needs the unstripped binary
given with --symbols for user-space names). Needs root, the installed runtime and gcc.
"""
import argparse, bisect, collections, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import make_bundle  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL_BASE = 0xFFFF800000000000


def symbols(paths):
    table = []
    for p in paths:
        out = subprocess.run(["nm", "-n", p], capture_output=True, text=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 3 and f[1] in "tTwW":
                table.append((int(f[0], 16), f[2]))
    table.sort()
    return table


def count(log, table):
    """Blocks and instructions translated after run_init_process, kernel vs user."""
    addrs = [a for a, _ in table]
    start = next((a for a, s in table if s == "run_init_process"), None)
    if start is None:
        sys.exit("the kernel image has no symbol run_init_process")
    started, first = False, False
    blocks = collections.Counter()
    funcs = collections.Counter()
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("IN:"):
                first = True
                continue
            m = re.match(r"0x([0-9a-f]+):", line)
            if not m or not first:
                continue
            first = False
            a = int(m.group(1), 16)
            i = bisect.bisect_right(addrs, a) - 1
            name = table[i][1] if i >= 0 else "?"
            if not started:
                started = a >= KERNEL_BASE and name == "run_init_process"
                if not started:
                    continue
            space = "kernel" if a >= KERNEL_BASE else "user"
            blocks[space] += 1
            funcs[(space, name if (a >= KERNEL_BASE or i >= 0) else "?")] += 1
    return blocks, funcs


def wrapper(work, log):
    """A qemu_path that records its argv and logs every translated block."""
    path = os.path.join(work, "qemu-log.sh")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nprintf "%s\\0" "$@" > {work}/argv\n'
                f'exec /usr/bin/qemu-system-x86_64 "$@" -d in_asm,nochain -D {log}\n')
    os.chmod(path, 0o755)
    return path


def bare_boot(work, argv, initrd, log):
    """The runtime's exact QEMU argv with the reset initramfs, virtiofsd and the agent socket
    in place as run-latency.py does."""
    d = tempfile.mkdtemp(dir=work)
    args = ["/usr/bin/qemu-system-x86_64"] + argv + ["-d", "in_asm,nochain", "-D", log]
    args[args.index("-initrd") + 1] = initrd
    vfs = subprocess.Popen(["/usr/lib/qemu/virtiofsd", "--socket-path=vfs.sock", "-o", f"source={d}",
                            "-o", "sandbox=chroot"], cwd=d, stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(os.path.join(d, "vfs.sock")):
            time.sleep(0.002)
        s = socket.socket(socket.AF_UNIX)
        s.bind(os.path.join(d, "agent.sock"))
        s.listen(1)
        subprocess.run(args, cwd=d, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=120)
        s.close()
    finally:
        vfs.kill()
        vfs.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", default=os.environ.get("KATA_RUNTIME_BIN", "/usr/local/bin/kata-runtime"))
    ap.add_argument("--config", default=os.environ.get("KATA_CONFIG", "/etc/kata-runtime/configuration.toml"))
    ap.add_argument("--symbols", help="unstripped kata-runtime for user-space names")
    ap.add_argument("--top", type=int, default=0)
    ap.add_argument("--runs", type=int, default=3, help="medians over this many runs of each (timer "
                    "interrupts land differently each time: counts vary by a few hundred blocks)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    work = tempfile.mkdtemp(prefix="kata-blocks-")
    try:
        bundle = os.path.join(work, "bundle")
        os.makedirs(bundle)
        make_bundle(bundle, ["true"])
        conf = open(args.config).read()
        kernel = re.search(r'^kernel\s*=\s*"([^"]+)"', conf, re.M).group(1)
        klog = os.path.join(work, "kata.log")
        conf = re.sub(r"^qemu_path\s*=.*$", f'qemu_path = "{wrapper(work, klog)}"', conf, flags=re.M)
        cfg = os.path.join(work, "configuration.toml")
        open(cfg, "w").write(conf)
        env = dict(os.environ, KATA_CONFIG=cfg, KATA_HYPERVISOR="qemu")
        # The bare boot: the same kernel and command line to an init that resets at once.
        src = os.path.join(work, "reset.c")
        open(src, "w").write("#include <sys/reboot.h>\nint main(void){reboot(RB_AUTOBOOT);return 0;}\n")
        os.makedirs(os.path.join(work, "stage"))
        init = os.path.join(work, "stage", "init")
        subprocess.run(["gcc", "-static", "-O2", "-o", init, src], check=True)
        cpio = os.path.join(work, "reset.cpio")
        subprocess.run([os.path.join(HERE, "..", "guest", "build-initramfs.sh"), init, cpio], check=True)
        ktab = symbols([kernel] + ([args.symbols] if args.symbols else []))
        btab = symbols([kernel, init])
        blog = os.path.join(work, "bare.log")
        runs = {"kata": [], "bare": []}
        for i in range(args.runs):  # interleaved, as the other benchmarks
            r = subprocess.run([args.runtime, "--root", os.path.join(work, "root"), "run", "--bundle", bundle, f"b{i}"],
                               env=env, stdin=subprocess.DEVNULL, capture_output=True)
            if r.returncode != 0:
                sys.exit(f"kata-runtime run failed ({r.returncode}): {r.stderr.decode().strip()}")
            kb, kf = count(klog, ktab)
            runs["kata"].append(kb)
            argv = open(os.path.join(work, "argv"), "rb").read().rstrip(b"\0").decode().split("\0")
            bare_boot(work, argv, cpio, blog)
            runs["bare"].append(count(blog, btab)[0])
        med = {k: {s: statistics.median(b[s] for b in v) for s in ("kernel", "user")} for k, v in runs.items()}
        print(f"{'':6} {'kernel':>8} {'user':>8} {'total':>8}   translated blocks after run_init_process, "
              f"medians of {args.runs}")
        for name in ("kata", "bare"):
            b = med[name]
            print(f"{name:6} {b['kernel']:8.0f} {b['user']:8.0f} {b['kernel'] + b['user']:8.0f}")
        extra = med["kata"]["kernel"] + med["kata"]["user"] - med["bare"]["kernel"] - med["bare"]["user"]
        print(f"kata - bare = {extra:.0f} blocks")
        if args.top:  # of the last run
            for (space, name), n in kf.most_common(args.top):
                print(f"{n:6d} {space:6} {name}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
