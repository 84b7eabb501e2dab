#!/usr/bin/env bash
# Lab group "guest": a real Linux guest drives an mdevmig device.
#   guest.sh WORKDIR PROFILE KMOD_DIR
#
# On the host: builds the guest driver (kmod/build.sh --guest), the dmaengine clients
# kmods/lab_dmacopy.ko and Linux's dmatest.ko (from the kernel's Debian source,
# tools/lab/linux-source.sh) and bar2check (static) for the kernel the lab boots in
# PROFILE, and an initramfs for the guest with tools/lab/initramfs.sh (busybox, those
# four, guest-init.sh as /init); decompresses that kernel (extract-vmlinux.py). Then boots
# the lab. In the lab guest: loads the stack, creates an mdevmig instance and boots the
# same Debian kernel in a nested QEMU (TCG), through its PVH entry, with the instance
# assigned (-device vfio-pci,sysfsdev=..., with the migration
# property of the QEMU in use); the guest prints its verdict on its serial console
# (WORKDIR's lab run folder, guest-console.log), which decides this test.
#
# MDEVMIG_GUEST_KARGS: extra kernel arguments for the nested guest (e.g. initcall_debug,
# which makes the guest list its slowest initcalls). MDEVMIG_GUEST_TRACE=1: the lab
# kernel traces the nested VMs' KVM exits, and a guest that stops gets its last ones in
# the log (guest_qemu.py, kvm_trace()).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
work=${1:?usage: guest.sh WORKDIR PROFILE KMOD_DIR}
profile=${2:?usage: guest.sh WORKDIR PROFILE KMOD_DIR}
kmod_dir=${3:?usage: guest.sh WORKDIR PROFILE KMOD_DIR}
initrd=$work/guest-initramfs.cpio.gz

if [ "${MDEVMIG_LAB:-}" = 1 ]; then
  # In the lab guest: the nested VM's host.
  fail() { echo "guest.sh: FAIL: $*"; exit 1; }
  modprobe -a vfio vfio_iommu_type1 mdev $(modinfo -F depends "$MDEVMIG_KO" | tr , " ") || fail "modprobe vfio vfio_iommu_type1 mdev"
  [ "${MDEVMIG_GUEST_ACCEL:-kvm}" = tcg ] || modprobe -q kvm_amd || modprobe -q kvm_intel || true
  insmod "$MDEVMIG_KO" || fail "insmod $MDEVMIG_KO"
  parent=$(ls /sys/class/mdev_bus | head -n1)
  types=/sys/class/mdev_bus/$parent/mdev_supported_types
  src=$(cat /proc/sys/kernel/random/uuid)
  dst=$(cat /proc/sys/kernel/random/uuid)
  echo "$src" > "$types/mdevmig-quarter/create" || fail "cannot create an mdevmig-quarter instance on $parent"
  echo "$dst" > "$types/mdevmig-quarter/create" || fail "cannot create a second mdevmig-quarter instance on $parent"

  # The guest kernel does as little as it can: one CPU, no crypto self-tests, no
  # speculation mitigations patched in, nothing printed but errors, and two initcalls
  # that took a tenth of its boot (initcall_debug) and nothing here needs left out:
  # kprobe events from the command line, and the KDF self-test.
  kargs="console=ttyS0 quiet panic=-1 oops=panic cryptomgr.notests mitigations=off"
  kargs+=" initcall_blacklist=init_kprobe_trace,crypto_kdf108_init"
  # A starved vCPU fails the kernel's boot-time timer check (see tools/lab/lab.sh).
  kargs+=" no_timer_check"
  # 48 MiB of RAM the guest kernel leaves alone: lab_dmacopy's copy longer than the
  # device memory (16 MiB) needs contiguous buffers no allocator gives (guest-init.sh).
  kargs+=' memmap=48M$0x7000000'
  # guest-init.sh finds each step's kernel lines by counting from a mark: a log that
  # never wraps (a phase adds about a hundred dmatest lines).
  kargs+=" log_buf_len=4M"
  kargs+=" ${MDEVMIG_GUEST_KARGS:-}"
  echo "guest.sh: kernel $(uname -r), instances $src (sources) and $dst (destinations)"
  # The nested VMs: -M pc -smp 1 -m 192 and a 64 MiB TCG translation cache: this lab
  # kernel clears every page it frees (init_on_free=1), and freeing a QEMU of 1.2 GiB
  # (256 MiB of RAM and the default 1 GiB cache) at its exit held a CPU long enough to
  # report a soft lockup. guest_qemu.py boots the guest once, saves it and runs the
  # scenarios from that image.
  # MDEVMIG_GUEST_TRACE=1 (see the top): the KVM trace events into the ring buffer.
  if [ "${MDEVMIG_GUEST_TRACE:-}" = 1 ]; then
    t=/sys/kernel/tracing
    [ -e $t/trace ] || mount -t tracefs nodev $t || fail "cannot mount tracefs"
    echo 16384 > $t/buffer_size_kb
    for e in kvm_exit kvm_inj_exception kvm_inj_virq kvm_msi_set_irq kvm_page_fault kvm_userspace_exit; do
      echo 1 > $t/events/kvm/$e/enable || fail "cannot enable the trace event kvm:$e"
    done
    echo 1 > $t/tracing_on
  fi
  rc=0
  python3 "$here/guest_qemu.py" --kernel "$work/vmlinux-$(uname -r)" --initrd "$initrd" \
    --append "$kargs" --src "$src" --dst "$dst" --out "$MDEVMIG_LAB_OUT" \
    ${MDEVMIG_GUEST_SCENARIOS:+--scenarios "$MDEVMIG_GUEST_SCENARIOS"} ${MDEVMIG_GUEST_ACCEL:+--accel "$MDEVMIG_GUEST_ACCEL"} \
    ${MDEVMIG_GUEST_HARNESS_ARGS:-} || rc=$?

  echo 1 > "/sys/bus/mdev/devices/$src/remove" || fail "cannot remove instance $src"
  echo 1 > "/sys/bus/mdev/devices/$dst/remove" || fail "cannot remove instance $dst"
  rmmod mdevmig || fail "rmmod mdevmig"
  [ "$rc" = 0 ] || fail "guest_qemu.py: a scenario failed (consoles in $MDEVMIG_LAB_OUT)"
  echo "guest.sh: PASS"
  exit 0
fi

# --- on the host -----------------------------------------------------------------------
fail() { echo "guest.sh: FAIL: $*"; exit 1; }
mkdir -p "$work"
work=$(cd "$work" && pwd)
initrd=$work/guest-initramfs.cpio.gz
. "$top/scripts/lib.sh"
case "$profile" in
  bookworm) root= ;;
  trixie|sid) root=$(profile_root "$profile") || fail "no $profile root" ;;
  *) fail "profile $profile: the guest test runs on bookworm, trixie or sid" ;;
esac
# The kernel the lab boots (tools/lab/lab.sh picks the same one).
kver=$(for k in "$root"/boot/vmlinuz-*; do k=${k##*/vmlinuz-}; [ -d "$root/lib/modules/$k/kernel" ] && echo "$k"; done | sort -V | tail -n1)
[ -n "$kver" ] || fail "no kernel in $root/boot"

# The guest driver: its Kbuild wants the profile's toolchain, so a modern profile builds
# inside its root (which sees the project at its host path).
if [ -z "$root" ]; then
  "$top/kmod/build.sh" --guest "$work/kmod" "$kver" >/dev/null
else
  case "$work" in "$top"/*) ;; *) fail "$work is not inside $top" ;; esac
  profile_run "$root" "kmod/build.sh --guest $work/kmod $kver" >/dev/null
fi || fail "cannot build mdevmig_guest.ko for $kver"
build_test_kmods "$here/kmods" "$work" "$profile" || fail "cannot build lab_dmacopy.ko for $kver"
# Linux's own DMA test (drivers/dma/dmatest.c), which Debian does not build: out of
# tree from the Debian source of the same kernel.
if [ -z "$root" ]; then
  src=$("$top/tools/lab/linux-source.sh" "$work/src" "$kver" drivers/dma/dmatest.c)
else
  src=$(profile_run "$root" "tools/lab/linux-source.sh $work/src $kver drivers/dma/dmatest.c")
fi || fail "cannot get drivers/dma/dmatest.c for $kver"
mkdir -p "$work/dmatest-src"
cp "$src/dmatest.c" "$work/dmatest-src/"
echo 'obj-m := dmatest.o' > "$work/dmatest-src/Kbuild"
build_test_kmods "$work/dmatest-src" "$work/dmatest" "$profile" || fail "cannot build dmatest.ko for $kver"
cc -static -O2 -Wall -Wextra -Werror -o "$work/bar2check" "$here/bar2check.c" || fail "cannot build bar2check"
cc -static -O2 -Wall -Wextra -Werror -o "$work/bar2load" "$here/bar2load.c" || fail "cannot build bar2load"

# The lab's kernel, decompressed: the guest boots it through its PVH entry.
"$here/extract-vmlinux.py" "$root/boot/vmlinuz-$kver" "$work/vmlinux-$kver" ||
  fail "cannot extract the kernel from $root/boot/vmlinuz-$kver"
"$top/tools/lab/initramfs.sh" "$initrd" "$root/bin/busybox" "$root" "$kver" "$here/guest-init.sh" "" \
  "$work/kmod/$kver/mdevmig_guest.ko=/mdevmig_guest.ko" \
  "$work/kmods/lab_dmacopy.ko=/lab_dmacopy.ko" \
  "$work/dmatest/kmods/dmatest.ko=/dmatest.ko" \
  "$work/bar2check=/bar2check" \
  "$work/bar2load=/bar2load" \
  "$top/tools/lab/kernel-reports.ere=/kernel-reports.ere" || fail "cannot build the guest's initramfs"

# The lab runs on tools/lab/qemu.sh's QEMU, whose SVM emulation does not deliver an
# injected interrupt twice (see there), on single-threaded TCG: on multi-threaded TCG
# (MDEVMIG_GUEST_LAB_TCG=multi) the nested guest still reset in about one migration
# scenario of thirty (README.md, "Status"). MDEVMIG_GUEST_LAB_QEMU=system runs the lab on
# the installed QEMU instead: with single-threaded TCG that reproduces the double delivery
# (the nested guest died in a quarter of the scenarios).
case "${MDEVMIG_GUEST_LAB_QEMU:-fixed}" in
  fixed) labqemu=$("$top/tools/lab/qemu.sh") || fail "cannot build the lab's QEMU (tools/lab/qemu.sh)" ;;
  system) labqemu=qemu-system-x86_64 ;;
  *) fail "MDEVMIG_GUEST_LAB_QEMU wants fixed or system" ;;
esac

# 3 GiB: the nested VMs' RAM files stay in the lab's /dev/shm until it powers off
# (guest_qemu.py says why).
exec "$top/tools/lab/lab.sh" --name guest_qemu --timeout "${MDEVMIG_GUEST_TIMEOUT:-2400}" --profile "$profile" --mem 3G \
  --qemu "$labqemu" --tcg-thread "${MDEVMIG_GUEST_LAB_TCG:-single}" \
  --kmod-dir "$kmod_dir" ${MDEVMIG_GUEST_KARGS:+--env "MDEVMIG_GUEST_KARGS=$MDEVMIG_GUEST_KARGS"} \
  ${MDEVMIG_GUEST_SCENARIOS:+--env "MDEVMIG_GUEST_SCENARIOS=$MDEVMIG_GUEST_SCENARIOS"} \
  ${MDEVMIG_GUEST_ACCEL:+--env "MDEVMIG_GUEST_ACCEL=$MDEVMIG_GUEST_ACCEL"} \
  ${MDEVMIG_GUEST_TRACE:+--env "MDEVMIG_GUEST_TRACE=$MDEVMIG_GUEST_TRACE"} \
  ${MDEVMIG_GUEST_HARNESS_ARGS:+--env "MDEVMIG_GUEST_HARNESS_ARGS=$MDEVMIG_GUEST_HARNESS_ARGS"} \
  -- "$0" "$work" "$profile" "$kmod_dir"
