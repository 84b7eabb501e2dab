#!/usr/bin/env bash
# Starts libvirtd inside a lab guest and waits until it answers: lab-libvirtd.sh
#
# The lab guest has no systemd, cgroups, AppArmor or virtlogd, and runs everything as
# root, so libvirt's QEMU driver is told to do without them; everything else is
# Debian's default. On the two-host lab it also listens on TCP without authentication,
# which only the other lab host can reach (the network exists between the two guests
# alone), so `virsh migrate` can drive both. A real host keeps its defaults (see the
# README, "Migrating with libvirt").
#
# The same script serves libvirt 9.0 (bookworm) and 11.3 (trixie): both ship the
# monolithic libvirtd, which takes --listen when it is not socket-activated (no systemd
# here), and read the same libvirtd.conf and qemu.conf keys.
set -euo pipefail
[ "${MDEVMIG_LAB:-}" = 1 ] || { echo "lab-libvirtd: must run inside the lab" >&2; exit 2; }
cat > /etc/libvirt/qemu.conf <<'EOC'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
# Peer-to-peer migration: the source's libvirtd gives up on a destination that does not
# answer after 2 x (3 + 1) = 8 s instead of the default 5 x (5 + 1) = 30 s, so that the
# tests of a network that drops and of a destination host that dies end sooner.
keepalive_interval = 2
keepalive_count = 3
EOC
cat > /etc/libvirt/libvirtd.conf <<EOC
listen_tls = 0
listen_tcp = 1
auth_tcp = "none"
host_uuid = "$(cat /proc/sys/kernel/random/uuid)"
EOC
if [ -n "${MDEVMIG_LAB_ROLE:-}" ]; then
  peer_role=$([ "$MDEVMIG_LAB_ROLE" = a ] && echo b || echo a)
  hostname "mdevmig-lab-$MDEVMIG_LAB_ROLE"
  printf '%s mdevmig-lab-%s\n%s mdevmig-lab-%s\n' "$MDEVMIG_LAB_ADDR" "$MDEVMIG_LAB_ROLE" \
    "$MDEVMIG_LAB_PEER" "$peer_role" >> /etc/hosts
fi
mkdir -p /run/libvirt /var/log/libvirt/qemu /var/lib/libvirt/qemu/save /var/cache/libvirt
libvirtd --daemon --listen
# It probes QEMU's capabilities before it answers: about 40 s in the lab, more under load.
for _ in $(seq 600); do
  virsh -c qemu:///system version >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "lab-libvirtd: libvirtd did not answer within 600 s" >&2
exit 1
