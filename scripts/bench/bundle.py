"""Shared by the benchmarks: a busybox OCI bundle made from `runc spec`'s defaults."""
import json, os, shutil, subprocess


def make_bundle(root, args):
    """Fills `root` with rootfs/ (busybox) and a config.json running `args` without a tty."""
    rootfs = os.path.join(root, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin/busybox"))
    for t in ["sh", "true", "sleep"]:
        os.symlink("busybox", os.path.join(rootfs, "bin", t))
    for d in ["proc", "sys", "dev", "tmp"]:
        os.makedirs(os.path.join(rootfs, d))
    subprocess.run(["runc", "spec", "--bundle", root], check=True)
    with open(os.path.join(root, "config.json")) as f:
        spec = json.load(f)
    spec["process"]["terminal"] = False
    spec["process"]["args"] = args
    with open(os.path.join(root, "config.json"), "w") as f:
        json.dump(spec, f)
