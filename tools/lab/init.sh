#!/bin/busybox sh
# /init of the lab guest: mount the host root read-only over 9p with a tmpfs overlay,
# chroot into it, run the job named on the kernel command line, save its exit code and
# the whole kernel log to the results share, power off. Written for tools/lab/lab.sh.
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in virtio_pci 9pnet_virtio 9p overlay; do modprobe $m || echo "lab-init: modprobe $m failed"; done
# A two-host lab (tools/lab/pair.sh): the NIC on the network between the two guests.
ip link set lo up
addr=$(sed -n 's/.*labaddr=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$addr" ]; then
  modprobe virtio_net && ip link set eth0 up && ip addr add "$addr" dev eth0 \
    || { echo "lab-init: cannot set up the network ($addr)"; poweroff -f; }
fi

mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower \
  || { echo "lab-init: cannot mount the host root"; poweroff -f; }
mount -t tmpfs -o mode=755 tmpfs /rw; mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot \
  || { echo "lab-init: overlay failed"; poweroff -f; }
mount -t proc proc /newroot/proc; mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev; mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts; mount -t tmpfs tmpfs /newroot/dev/shm
mount -t tmpfs tmpfs /newroot/run
mkdir -p /newroot/out && mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out /newroot/out \
  || { echo "lab-init: cannot mount the results share"; poweroff -f; }
# A two-host lab's rendezvous folder, shared with the other host (no caching: each guest
# sees the other's files at once).
if grep -q ' labshare=1' /proc/cmdline; then
  mkdir -p /newroot/share && mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 share /newroot/share \
    || { echo "lab-init: cannot mount the shared folder"; poweroff -f; }
fi
# Modern profiles: the root is a debootstrapped tree, and the project (sources and the
# build made inside that root) comes as its own share, at its host path, with an overlay.
proj=$(sed -n 's/.*labproj=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$proj" ]; then
  mkdir -p /projlower /rw/pupper /rw/pwork "/newroot$proj"
  mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose project /projlower \
    && mount -t overlay overlay -o lowerdir=/projlower,upperdir=/rw/pupper,workdir=/rw/pwork "/newroot$proj" \
    || { echo "lab-init: cannot mount the project share"; poweroff -f; }
fi

# A kernel from outside the root (the debug profile) brings its modules as a share.
kmods=$(sed -n 's/.*labkmods=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$kmods" ]; then
  mkdir -p "/newroot/lib/modules/$kmods"
  mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose kmodules "/newroot/lib/modules/$kmods" \
    || { echo "lab-init: cannot mount the kernel's modules"; poweroff -f; }
fi

# The whole kernel log goes to the results share as the job runs, from the first record
# of the boot on: a report stays in it when the ring wraps under a noisy job, and with
# `quiet` the console shows only errors. /dev/kmsg gives one record per read; GNU dd
# (the root's) goes on after a lost-records error (EPIPE), and lab.sh finds such gaps
# by the records' sequence numbers.
chroot /newroot dd if=/dev/kmsg of=/out/kmsg.txt bs=16k conv=noerror status=none &
kmsg_reader=$!

limit=$(sed -n 's/.*labtimeout=\([0-9]*\).*/\1/p' /proc/cmdline)
echo "lab-init: job starting (limit ${limit}s)"
timeout -s KILL "$limit" chroot /newroot /usr/bin/env -i \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root TERM=dumb LANG=C.UTF-8 MDEVMIG_LAB=1 /bin/bash /out/job.sh
rc=$?
echo "lab-init: job rc=$rc"
# The end mark: once the reader has written it, the copy holds every record before it.
echo "lab-init: kernel log end" > /dev/kmsg
i=0
while [ $i -lt 600 ] && ! tail -c 4096 /newroot/out/kmsg.txt 2>/dev/null | grep -q 'lab-init: kernel log end'; do
  sleep 0.1; i=$((i + 1))
done
kill $kmsg_reader 2>/dev/null
dmesg > /newroot/out/dmesg.txt
echo $rc > /newroot/out/job.rc
sync
umount /newroot/out
poweroff -f
