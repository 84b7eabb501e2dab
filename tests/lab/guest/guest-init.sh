#!/bin/busybox sh
# /init of the Linux guest that tests/lab/guest/guest.sh boots inside the lab: a VM
# with an mdevmig instance assigned (vfio-pci). It loads the guest driver, checks the
# device bound to it, copies memory through its dmaengine channel (lab_dmacopy.ko, a
# dmaengine client, then Linux's dmatest), writes and reads BAR2 from the CPU through
# resource2, unloads the driver, and prints one verdict line on the serial console, "guest: PASS" or
# "guest: FAIL: <reason>", before powering off.
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
say() { echo "guest: $*"; }
# A step, with the guest's uptime (seconds) when it starts.
step() { echo "guest: [$(cut -d' ' -f1 /proc/uptime)] $*"; }
fail() {
  say "FAIL: $*"
  dmesg | tail -n 40 | sed 's/^/guest-dmesg: /'
  poweroff -f
}
say "init after $(cut -d' ' -f1 /proc/uptime) s of uptime, kernel $(uname -r)"
# Booted with initcall_debug (MDEVMIG_GUEST_KARGS): where the boot went.
if grep -q initcall_debug /proc/cmdline; then
  dmesg | sed -n 's/.*initcall \([^ ]*\) returned .* after \([0-9]*\) usecs.*/\2 \1/p' |
    sort -rn | head -n 25 | sed 's/^/guest-initcall: /'
fi

dev=
for d in /sys/bus/pci/devices/*; do
  [ "$(cat "$d/vendor")" = 0x1de7 ] && [ "$(cat "$d/device")" = 0x6d67 ] && dev=$d
done
[ -n "$dev" ] || fail "no mdevmig function (1de7:6d67) on the PCI bus"
bdf=${dev##*/}
say "mdevmig function at $bdf"

step "insmod mdevmig_guest.ko"
insmod /mdevmig_guest.ko || fail "insmod mdevmig_guest.ko"
drv=$(readlink "$dev/driver")
[ "${drv##*/}" = mdevmig_guest ] || fail "$bdf is bound to '${drv##*/}', not mdevmig_guest"
line=$(dmesg | grep "mdevmig_guest $bdf: dmaengine") || fail "no probe message from mdevmig_guest"
say "bound: ${line#*] }"
chans=$(ls /sys/class/dma 2>/dev/null)
[ -n "$chans" ] || fail "no dmaengine channel in /sys/class/dma"
say "dmaengine channels: $chans"

step "lab_dmacopy"
insmod /lab_dmacopy.ko
rc=$?
dmesg | grep 'lab_dmacopy: ' | sed 's/^\[[^]]*\] /guest: /'
[ $rc -eq 0 ] || fail "memcpy through dmaengine (lab_dmacopy)"
rmmod lab_dmacopy || fail "rmmod lab_dmacopy"
# Linux's own DMA test: two threads on the channel, 100 copies each of random lengths
# and offsets in 16 KiB buffers, every byte checked; each thread prints a summary.
step "dmatest: 2 threads x 100 copies on $chans"
insmod /dmatest.ko timeout=120000 iterations=100 threads_per_chan=2 || fail "insmod dmatest.ko"
echo "$chans" > /sys/module/dmatest/parameters/channel || fail "dmatest: cannot select $chans"
echo 1 > /sys/module/dmatest/parameters/run || fail "dmatest: cannot start"
cat /sys/module/dmatest/parameters/wait > /dev/null
sums=$(dmesg | grep 'dmatest: .*summary' | sed 's/^\[[^]]*\] //')
echo "$sums" | sed 's/^/guest: /'
[ "$(echo "$sums" | grep -c ' 100 tests, 0 failures')" -eq 2 ] || fail "dmatest: not 2 summaries of 100 tests with 0 failures"
rmmod dmatest || fail "rmmod dmatest"

irqs=$(awk '/mdevmig_guest/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i } END { print n + 0 }' /proc/interrupts)
[ "$irqs" -gt 0 ] || fail "no interrupt of mdevmig_guest counted in /proc/interrupts"
say "interrupts taken: $irqs ($(awk '/mdevmig_guest/ { print $(NF-2), $(NF-1) }' /proc/interrupts))"

step "bar2check"
out=$(/bar2check "$dev/resource2") || fail "BAR2 through resource2: $out"
say "$out"

step "rmmod mdevmig_guest"
rmmod mdevmig_guest || fail "rmmod mdevmig_guest"
[ ! -e "$dev/driver" ] || fail "$bdf still bound after rmmod"
say "mdevmig_guest unloaded, $bdf unbound"

step "checking the kernel log"
# The guest kernel's own reports (the lab's list), at the start of a message.
report=$(dmesg | sed 's/^\[[^]]*\] //' | grep -E -m1 -f /kernel-reports.ere)
[ -z "$report" ] || fail "guest kernel: $report"
say "PASS after $(cut -d' ' -f1 /proc/uptime) s of uptime"
poweroff -f
