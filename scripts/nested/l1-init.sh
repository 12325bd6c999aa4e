#!/bin/busybox sh
# /init of the L1 guest (nested validation, docs/vmm.md): a small Linux "host" running under
# QEMU TCG with an emulated AMD-V CPU. It loads nothing (KVM is built into its kernel), moves
# itself onto a tmpfs (pivot_root, which kata-runtime's face uses, refuses the initramfs), then
# runs /nested/test.sh and powers off. Every line the harness parses starts with "@@".
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
if [ "$$" = 1 ] && [ ! -e /.l1-root ]; then   # still on the initramfs (rootfs)
    /bin/busybox mount -t tmpfs -o mode=0755 tmpfs /newroot
    for d in /*; do
        case "$d" in /newroot|/proc|/sys|/dev) continue ;; esac
        /bin/busybox cp -a "$d" /newroot/
    done
    /bin/busybox mkdir -p /newroot/proc /newroot/sys /newroot/dev
    /bin/busybox touch /newroot/.l1-root
    /bin/busybox umount /proc
    exec /bin/busybox switch_root /newroot /init
fi
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /sys/fs/cgroup
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
dmesg -n 1   # keep L1 kernel messages (e.g. KVM's "unhandled WRMSR" of a probing guest) off the framed output
echo "@@l1 up $(cut -d' ' -f1 /proc/uptime) s, $(nproc) cpu(s), kernel $(uname -r)"
if [ -c /dev/kvm ]; then
    echo "@@l1 kvm $(grep -o -w -m1 -E 'svm|vmx' /proc/cpuinfo) $(ls /sys/module | grep -E '^kvm' | tr '\n' ' ')"
else
    echo "@@l1 no /dev/kvm: $(dmesg | grep -i -E 'kvm|svm' | tail -3)"
fi
# A heartbeat: a harness that sees none for long knows the L1 itself stalled (docs/vmm.md).
( while sleep 15; do echo "@@tick $(cut -d' ' -f1 /proc/uptime)"; done ) &
tick=$!
sh /nested/test.sh
status=$?
kill "$tick"
echo "@@l1 done status=$status at $(cut -d' ' -f1 /proc/uptime) s"
sync
reboot -f
