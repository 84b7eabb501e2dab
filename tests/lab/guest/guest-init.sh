#!/bin/busybox sh
# /init of the Linux guest that tests/lab/guest/guest.sh boots inside the lab: a VM
# with an mdevmig instance assigned (vfio-pci). At boot it loads the guest driver,
# checks the device bound to it, copies memory through its dmaengine channel
# (lab_dmacopy.ko, a dmaengine client, then Linux's dmatest), writes and reads BAR2 from
# the CPU through resource2 (bar2check), unloads the driver and loads it again. Then it
# says "guest: ready" on its second serial port (ttyS1, the control channel) and serves
# commands from it, one a line, until "quit"; the harness (guest_qemu.py) saves the VM
# there and starts every scenario from that image. Commands:
#   start  start the workloads: Linux's dmatest (4 threads, random lengths and offsets,
#          no end) on the device's channel and bar2load (BAR2 written from the CPU);
#          answers "guest: started"
#   stop   stop both; dmatest prints one summary per thread, bar2load checks all of
#          BAR2; answers their lines and "guest: stopped PASS" or "guest: stopped FAIL: why"
#   quit   stop what runs, unload the driver, check the kernel log, answer "guest: PASS"
#          or "guest: FAIL: <reason>" and power off
# Every answer also goes to the console (ttyS0). Before the control channel is up, a
# failure prints "guest: FAIL: <reason>" on the console and powers off.
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp
ctl=
# Once the control channel is up, lines go there only: every byte on a serial port costs
# the nested VM exits, and the harness prints what it receives.
say() {
  if [ -n "$ctl" ]; then echo "guest: $*" >&3; else echo "guest: $*"; fi
}
# A step, with the guest's uptime (seconds) when it starts.
step() { say "[$(cut -d' ' -f1 /proc/uptime)] $*"; }
fail() {
  say "FAIL: $*"
  dmesg | tail -n 40 | sed 's/^/guest-dmesg: /'
  poweroff -f
}
# Starts dmatest's selected threads (THREADS of them) and returns once they run or
# have run. The write to `run` only wakes them, and until each one is scheduled dmatest
# counts it as neither running nor done: a `wait` read at once finds nothing to wait
# for, and `run` reads N (a loaded run failed the rmmod check below so). Returns 1 if
# within 60 s none ran and fewer than THREADS new summaries came.
dmatest_start() {  # dmatest_start THREADS
  local m i
  m=$(dmesg | wc -l)
  echo 1 > /sys/module/dmatest/parameters/run || return 1
  for i in $(seq 600); do
    [ "$(cat /sys/module/dmatest/parameters/run)" = Y ] && return 0
    [ "$(dmesg | tail -n +$((m + 1)) | grep -c 'dmatest: .*summary')" -ge "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
say "init after $(cut -d' ' -f1 /proc/uptime) s of uptime, kernel $(uname -r)"
# Booted with initcall_debug (MDEVMIG_GUEST_KARGS): where the boot went.
if grep -q initcall_debug /proc/cmdline; then
  dmesg | sed -n 's/.*initcall \([^ ]*\) returned .* after \([0-9]*\) usecs.*/\2 \1/p' |
    sort -rn | head -n 25 | sed 's/^/guest-initcall: /'
fi

nodev=0 checks=1
grep -q 'guest.nodev=1' /proc/cmdline && nodev=1 checks=0
grep -q 'guest.checks=0' /proc/cmdline && checks=0
dev=
[ $nodev = 1 ] || for d in /sys/bus/pci/devices/*; do
  [ "$(cat "$d/vendor")" = 0x1de7 ] && [ "$(cat "$d/device")" = 0x6d67 ] && dev=$d
done
[ $nodev = 1 ] || [ -n "$dev" ] || fail "no mdevmig function (1de7:6d67) on the PCI bus"
bdf=${dev##*/}
say "mdevmig function at $bdf"

load_driver() {
  insmod /mdevmig_guest.ko || fail "insmod mdevmig_guest.ko"
  drv=$(readlink "$dev/driver")
  [ "${drv##*/}" = mdevmig_guest ] || fail "$bdf is bound to '${drv##*/}', not mdevmig_guest"
  chans=$(ls /sys/class/dma 2>/dev/null)
  [ -n "$chans" ] || fail "no dmaengine channel in /sys/class/dma"
}
# Unloads the driver; nothing of it may be left: the function unbound, its interrupt
# freed, its dmaengine channel and BAR0 region gone.
unload_driver() {
  rmmod mdevmig_guest || fail "rmmod mdevmig_guest"
  [ ! -e "$dev/driver" ] || fail "$bdf still bound after rmmod"
  [ ! -e /sys/module/mdevmig_guest ] || fail "/sys/module/mdevmig_guest still there after rmmod"
  ! grep -q mdevmig_guest /proc/interrupts || fail "an interrupt of mdevmig_guest still in /proc/interrupts after rmmod"
  [ -z "$(ls /sys/class/dma 2>/dev/null)" ] || fail "dmaengine channels left after rmmod: $(ls /sys/class/dma)"
  ! grep -q mdevmig_guest /proc/iomem || fail "a region of mdevmig_guest still in /proc/iomem after rmmod"
  say "mdevmig_guest unloaded, $bdf unbound, its interrupt, channel and BAR0 region released"
}

if [ $checks = 1 ]; then
step "insmod mdevmig_guest.ko"
load_driver
line=$(dmesg | grep "mdevmig_guest $bdf: dmaengine") || fail "no probe message from mdevmig_guest"
say "bound: ${line#*] }"
say "dmaengine channels: $chans"

# Its long copy (more than the device memory) uses the RAM guest.sh reserved with
# memmap=SIZE$BASE on the kernel command line.
step "lab_dmacopy"
big=$(sed -n 's/.*memmap=\([0-9]*\)M\$\(0x[0-9a-fA-F]*\).*/\2 \1/p' /proc/cmdline)
[ -n "$big" ] || fail "no memmap=SIZE\$BASE on the kernel command line: no RAM for lab_dmacopy's long copy"
set -- $big
insmod /lab_dmacopy.ko big_base="$1" big_size=$(($2 << 20))
rc=$?
dmesg | grep 'lab_dmacopy: ' | sed 's/^\[[^]]*\] /guest: /'
[ $rc -eq 0 ] || fail "memcpy through dmaengine (lab_dmacopy)"
rmmod lab_dmacopy || fail "rmmod lab_dmacopy"
# Linux's own DMA test: two threads on the channel, 100 copies each of random lengths
# and offsets in 16 KiB buffers, every byte checked; each thread prints a summary.
step "dmatest: 2 threads x 100 copies on $chans"
insmod /dmatest.ko timeout=120000 iterations=100 threads_per_chan=2 || fail "insmod dmatest.ko"
echo "$chans" > /sys/module/dmatest/parameters/channel || fail "dmatest: cannot select $chans"
dmatest_start 2 || fail "dmatest: cannot start"
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

# The driver cannot go while a client holds its channel: the dmaengine core holds a
# reference on the provider's module for each client channel, so rmmod fails ("in use":
# the module's refcnt), the driver stays bound and the client's copies go on. dmatest
# holds its channel until it is unloaded. Its buffers here are 4 MiB, the largest it
# can have (it kmallocs them; beyond the page allocator's largest block its own
# allocation warns): its copies of up to 4 MiB each take the device's steps of COPY_GUEST
# one after the other, and each takes a while, so they are in flight at the rmmod.
step "rmmod mdevmig_guest while dmatest's copies (2 threads x 8, up to 4 MiB each) are in flight"
mark=$(dmesg | wc -l)
insmod /dmatest.ko timeout=120000 iterations=8 threads_per_chan=2 test_buf_size=4194304 || fail "insmod dmatest.ko test_buf_size=4194304"
echo "$chans" > /sys/module/dmatest/parameters/channel || fail "dmatest: cannot select $chans"
dmatest_start 2 || fail "dmatest (4 MiB buffers): cannot start"
[ "$(cat /sys/module/dmatest/parameters/run)" = Y ] || fail "dmatest (4 MiB buffers) is not running: $(dmesg | tail -n +$((mark + 1)) | grep dmatest | tail -n 3)"
out=$(rmmod mdevmig_guest 2>&1) && fail "rmmod mdevmig_guest succeeded while dmatest held its channel"
refs=$(cat /sys/module/mdevmig_guest/refcnt)
drv=$(readlink "$dev/driver")
[ "${drv##*/}" = mdevmig_guest ] || fail "$bdf unbound by a failed rmmod"
[ "$refs" -ge 1 ] || fail "rmmod failed but mdevmig_guest's refcnt is $refs"
say "rmmod mdevmig_guest refused while dmatest ran: '$out', refcnt $refs, $bdf still bound"
cat /sys/module/dmatest/parameters/wait > /dev/null
sums=$(dmesg | tail -n +$((mark + 1)) | grep 'dmatest: .*summary' | sed 's/^\[[^]]*\] //')
echo "$sums" | sed 's/^/guest: /'
[ "$(echo "$sums" | grep -c ' 8 tests, 0 failures')" -eq 2 ] || fail "dmatest (4 MiB buffers): not 2 summaries of 8 tests with 0 failures"
rmmod dmatest || fail "rmmod dmatest"
refs=$(cat /sys/module/mdevmig_guest/refcnt)
[ "$refs" = 0 ] || fail "mdevmig_guest's refcnt is $refs after dmatest released its channel"

step "rmmod mdevmig_guest, insmod again"
unload_driver
load_driver

elif [ $nodev = 0 ]; then
  load_driver
fi

# The guest kernel's own reports (the lab's list), at the start of a message.
check_log() {
  report=$(dmesg | sed 's/^\[[^]]*\] //' | grep -E -m1 -f /kernel-reports.ere)
  [ -z "$report" ] || fail "guest kernel: $report"
}
check_log

# The control channel: the second serial port, lines in both directions, no echo.
stty -F /dev/ttyS1 -echo -icrnl -onlcr -opost 2>/dev/null || fail "cannot set up /dev/ttyS1"
exec 3<>/dev/ttyS1 || fail "cannot open /dev/ttyS1"
ctl=1

running=0 loadpid= looppid=
# dmatest runs in rounds of 25 copies per thread, started again until `stop`: a stop
# waits for the round in flight to end instead of stopping the threads, since a thread
# stopped (kthread_stop) while it waits for its transfer ends that wait early and counts
# the transfer as failed ("test timed out", or "completion busy status" if the
# completion lands just then) although nothing failed.
dmatest_rounds() {
  while [ ! -e /tmp/dmatest.stop ]; do
    echo "$chans" > /sys/module/dmatest/parameters/channel || { echo "cannot select $chans" > /tmp/dmatest.err; return; }
    dmatest_start 4 || { echo "cannot start" > /tmp/dmatest.err; return; }
    cat /sys/module/dmatest/parameters/wait > /dev/null
  done
}
start_load() {
  [ $running = 0 ] || { say "start FAIL: already running"; return; }
  mark=$(dmesg | wc -l)
  rm -f /tmp/dmatest.stop /tmp/dmatest.err
  insmod /dmatest.ko timeout=120000 iterations=25 threads_per_chan=4 || { say "start FAIL: insmod dmatest.ko"; return; }
  dmatest_rounds &
  looppid=$!
  /bar2load "$dev/resource2" > /tmp/bar2load.out 2>&1 &
  loadpid=$!
  running=1
  step "started: dmatest, 4 threads on $chans in rounds of 25 copies; bar2load (pid $loadpid)"
}
stop_load() {
  [ $running = 1 ] || { say "stopped FAIL: nothing runs"; return; }
  running=0
  why=
  # bar2load checks all of BAR2 after the signal; wait for it by its pid too (a run saw
  # wait return before bar2load had printed anything).
  kill -TERM "$loadpid" 2>/dev/null || why="${why:+$why; }bar2load had ended before stop"
  touch /tmp/dmatest.stop
  # A stop that takes long says what it waits for, with the kernel's latest lines.
  (sleep 60; for t in 60 120 180 240; do
     waits=$(kill -0 "$loadpid" 2>/dev/null && echo "bar2load ($(tr '\0' ' ' < /proc/$loadpid/wchan 2>/dev/null))")
     waits="$waits $(kill -0 "$looppid" 2>/dev/null && echo "dmatest's round")"
     step "stop: still waiting after $t s for:$waits"
     dmesg | tail -n 8 | while read -r l; do say "guest-dmesg: $l"; done
     sleep 60
   done) &
  slowpid=$!
  while kill -0 "$loadpid" 2>/dev/null; do sleep 1; done
  wait "$loadpid"
  lrc=$?
  [ $lrc = 0 ] || why="${why:+$why; }bar2load exit status $lrc"
  while kill -0 "$looppid" 2>/dev/null; do sleep 1; done
  kill "$slowpid" 2>/dev/null
  wait "$slowpid" 2>/dev/null
  [ ! -e /tmp/dmatest.err ] || why="${why:+$why; }dmatest: $(cat /tmp/dmatest.err)"
  dmesg | tail -n +$((mark + 1)) | grep -E 'bar2load|Out of memory|oom|dmatest: .*result|mdevmig_guest' | while read -r l; do say "$l"; done
  sums=$(dmesg | tail -n +$((mark + 1)) | grep 'dmatest: .*summary' | sed 's/^\[[^]]*\] //')
  rmmod dmatest || why="${why:+$why; }rmmod dmatest"
  # One summary per thread and round, about a hundred a phase: the summaries with
  # failures go out as dmatest printed them, the rest as a tally of dmatest's figures.
  echo "$sums" | grep 'summary' | grep -v 'tests, 0 failures' | while read -r l; do say "$l"; done
  total=$(echo "$sums" | grep -c 'summary')
  n=$(echo "$sums" | grep -c 'summary [1-9][0-9]* tests, 0 failures')
  tests=$(echo "$sums" | sed -n 's/.* summary \([0-9]*\) tests.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
  kbs=$(echo "$sums" | sed -n 's/.* \([0-9]*\) KB\/s.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
  say "dmatest: $n of $total summaries with tests and 0 failures, $tests tests, $kbs KB/s summed"
  say "$(cat /tmp/bar2load.out)"
  [ "$total" -ge 4 ] && [ "$n" -eq "$total" ] || why="${why:+$why; }dmatest: $n of $total summaries with tests and 0 failures"
  grep -q '^bar2load: PASS' /tmp/bar2load.out || why="${why:+$why; }bar2load: no PASS"
  report=$(dmesg | sed 's/^\[[^]]*\] //' | grep -E -m1 -f /kernel-reports.ere)
  [ -z "$report" ] || why="${why:+$why; }guest kernel: $report"
  if [ -z "$why" ]; then step "stopped PASS"; else step "stopped FAIL: $why"; fi
}

say "ready after $(cut -d' ' -f1 /proc/uptime) s of uptime"
while read -r cmd <&3; do
  case "$cmd" in
    start) start_load ;;
    stop) stop_load ;;
    quit)
      [ $running = 0 ] || stop_load
      step "quit: unloading the driver, checking the kernel log"
      [ $nodev = 1 ] || unload_driver
      check_log
      say "PASS after $(cut -d' ' -f1 /proc/uptime) s of uptime"
      poweroff -f ;;
    '') ;;
    *) say "unknown command '$cmd'" ;;
  esac
done
fail "the control channel closed"
