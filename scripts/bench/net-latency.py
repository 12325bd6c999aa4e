#!/usr/bin/env python3
"""What container networking adds to `kata-runtime run` start-up.

In one run, on the same busybox bundle (`/bin/true`), medians over N runs, interleaved:
  none  config.json's network namespace has no path: the face makes a new one, the VM gets no
        network device (the namespace has only lo)
  veth  the namespace path names a namespace holding one end of a veth pair with an address
        and a default route (as CNI or netavark leave it): a tap, two tc redirects, a
        virtio-net device, and eth0 configured in the guest
Then a few `--debug` runs of the veth case give the host-side plumbing time (scan, tap,
qdiscs, filters) from the keeper's log. The namespaces are throwaway ones (never the host's).
Prints a table; --markdown prints a row for docs/performance.md. Needs root, iproute2, runc
(for `runc spec`) and busybox-static.
"""
import json, os, re, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import make_bundle  # noqa: E402

N = int(os.environ.get("BENCH_RUNS", "10"))
RUNTIME = os.environ.get("KATA_RUNTIME_BIN", "/usr/local/bin/kata-runtime")


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def timed(cmd):
    t = time.monotonic()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.monotonic() - t
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode().strip()}")
    return dt


def set_netns(bundle, path):
    cfg = os.path.join(bundle, "config.json")
    with open(cfg) as f:
        spec = json.load(f)
    for ns in spec["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = path
    with open(cfg, "w") as f:
        json.dump(spec, f)


def main():
    if os.geteuid() != 0:
        sys.exit("run as root")
    work = tempfile.mkdtemp(prefix="kata-netbench-")
    c, p = f"kata-netbench-{os.getpid()}-c", f"kata-netbench-{os.getpid()}-p"
    try:
        sh("ip", "netns", "add", c)
        sh("ip", "netns", "add", p)
        sh("ip", "-n", p, "link", "add", "vp", "type", "veth", "peer", "name", "eth0", "netns", c)
        sh("ip", "-n", c, "addr", "add", "10.89.0.2/24", "dev", "eth0")
        sh("ip", "-n", c, "link", "set", "eth0", "up")
        sh("ip", "-n", c, "route", "add", "default", "via", "10.89.0.1")
        sh("ip", "-n", p, "addr", "add", "10.89.0.1/24", "dev", "vp")
        sh("ip", "-n", p, "link", "set", "vp", "up")
        plain, veth = os.path.join(work, "plain"), os.path.join(work, "veth")
        for b in (plain, veth):
            os.makedirs(b)
            make_bundle(b, ["true"])
        set_netns(veth, f"/run/netns/{c}")
        root = os.path.join(work, "root")
        results = {"none": [], "veth": []}
        for i in range(N):
            results["none"].append(timed([RUNTIME, "--root", root, "run", "--bundle", plain, f"n{i}"]))
            results["veth"].append(timed([RUNTIME, "--root", root, "run", "--bundle", veth, f"v{i}"]))
        plumbing = []
        for i in range(3):
            r = subprocess.run([RUNTIME, "--debug", "--root", root, "run", "--bundle", veth, f"d{i}"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            m = re.search(r"connected to tap0_kata in (\d+) us", r.stderr.decode())
            if m:
                plumbing.append(int(m.group(1)) / 1000)
        med = {k: statistics.median(v) * 1000 for k, v in results.items()}
        print(f"runs per measurement: {N}")
        for k in ["none", "veth"]:
            v = sorted(x * 1000 for x in results[k])
            print(f"{k:5} median {med[k]:8.1f} ms   min {v[0]:8.1f}   max {v[-1]:8.1f}")
        delta = med["veth"] - med["none"]
        host = statistics.median(plumbing) if plumbing else float("nan")
        print(f"veth - none = {delta:+.1f} ms ({delta / med['none'] * 100:+.1f} %); host-side plumbing (median of {len(plumbing)}) {host:.2f} ms")
        if "--markdown" in sys.argv:
            print(f"| {N} | {med['none']:.0f} | {med['veth']:.0f} | {delta:+.0f} ms ({delta / med['none'] * 100:+.1f} %) | {host:.1f} ms |")
    finally:
        subprocess.run(["ip", "netns", "del", c], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "del", p], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
