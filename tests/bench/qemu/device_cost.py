#!/usr/bin/env python3
"""One live migration of the qtest harness's VM with QEMU's own `migrate`, with or
without an mdevmig instance as vfio-pci, for the "device cost" mode of
qemu_migrate_bench.sh (BENCHMARKS.md, "What a 64 MiB device adds to a migration").

The VM is the one tools/qemu builds (QemuConfig::argv: q35, TCG, a HLT-only BIOS,
-nodefaults, qtest and QMP sockets), with the vfio-pci device or without it and nothing
else different; its RAM is filled over qtest like `qemu-migrate --guest-fill`. The
source migrates through a relay that counts the stream's bytes into a destination
started with -incoming defer. Migration parameters as the harness sets them for a
switchover at once: max-bandwidth, downtime-limit, the events capability. Nothing
drives the device: this measures what its state adds, not a workload.

Prints one JSON object: QEMU's total-time, downtime, setup-time, RAM bytes, the stream's
bytes, and whether the destination runs with the filled RAM.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time


def qemu_argv(a, name, uuid, incoming):
    argv = [a.qemu, "-M", "q35", "-accel", "tcg", "-bios", a.bios, "-m", str(a.mem_mb),
            "-nodefaults", "-no-user-config", "-display", "none"]
    if uuid:
        mig = "x-enable-migration=on" if a.protocol == "v1" else "enable-migration=on"
        argv += ["-device", f"vfio-pci,sysfsdev=/sys/bus/mdev/devices/{uuid},addr=0x3,{mig}"]
    argv += ["-qtest", f"unix:{a.dir}/{name}.qtest,server=on,wait=off", "-qtest-log", "none",
             "-qmp", f"unix:{a.dir}/{name}.qmp,server=on,wait=off"]
    if incoming:
        argv += ["-incoming", incoming]
    return argv


def connect(path, timeout=180.0):
    # A QEMU started in a loaded nested TCG guest can take a minute to open its sockets.
    end = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


class Qmp:
    def __init__(self, path):
        self.f = connect(path).makefile("rw")
        json.loads(self.f.readline())  # greeting
        self.execute("qmp_capabilities")

    def execute(self, cmd, args=None):
        self.f.write(json.dumps({"execute": cmd, **({"arguments": args} if args else {})}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "event" in r:
                continue
            if "error" in r:
                raise RuntimeError(f"{cmd}: {r['error']}")
            return r["return"]


class Qtest:
    def __init__(self, path):
        self.f = connect(path).makefile("rw")

    def cmd(self, line):
        self.f.write(line + "\n")
        self.f.flush()
        while True:
            r = self.f.readline().strip()
            if r.startswith("OK") or r.startswith("FAIL") or r.startswith("ERR"):
                if not r.startswith("OK"):
                    raise RuntimeError(f"qtest {line}: {r}")
                return r
            # IRQ lines and other asynchronous output


class Relay:
    """Forwards one connection from `listen` to `target` and counts the bytes each way."""

    def __init__(self, listen, target):
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(listen)
        self.srv.listen(1)
        self.target = target
        self.forward = 0
        self.threads = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        a, _ = self.srv.accept()
        b = connect(self.target)
        for src, dst, fwd in ((a, b, True), (b, a, False)):
            t = threading.Thread(target=self.pump, args=(src, dst, fwd), daemon=True)
            t.start()
            self.threads.append(t)

    def pump(self, src, dst, fwd):
        try:
            while True:
                d = src.recv(1 << 20)
                if not d:
                    break
                if fwd:
                    self.forward += len(d)
                dst.sendall(d)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--dir", required=True)
    p.add_argument("--bios", required=True)
    p.add_argument("--protocol", choices=["v1", "v2"], required=True)
    p.add_argument("--src", default="", help="source mdev UUID (none: no device)")
    p.add_argument("--dst", default="", help="destination mdev UUID")
    p.add_argument("--mem-mb", type=int, default=128)
    p.add_argument("--fill-mb", type=int, default=96)
    p.add_argument("--bandwidth", type=int, default=1 << 30)
    p.add_argument("--downtime", type=int, default=300)
    p.add_argument("--timeout", type=float, default=600)
    a = p.parse_args()
    procs = []
    logs = []
    try:
        for name, uuid, inc in (("src", a.src, None), ("dst", a.dst, "defer")):
            log = open(f"{a.dir}/{name}.log", "w")
            logs.append(log)
            procs.append(subprocess.Popen(qemu_argv(a, name, uuid, inc), stdout=log,
                                          stderr=subprocess.STDOUT))
        src, dst = Qmp(f"{a.dir}/src.qmp"), Qmp(f"{a.dir}/dst.qmp")
        qt = Qtest(f"{a.dir}/src.qtest")
        start = 8 << 20  # as the harness: from 8 MiB up
        qt.cmd(f"memset {start:#x} {a.fill_mb << 20:#x} 0xa5")
        src.execute("migrate-set-parameters",
                    {"max-bandwidth": a.bandwidth, "downtime-limit": a.downtime})
        src.execute("migrate-set-capabilities",
                    {"capabilities": [{"capability": "events", "state": True}]})
        dst.execute("migrate-incoming", {"uri": f"unix:{a.dir}/dst.mig"})
        relay = Relay(f"{a.dir}/relay.mig", f"{a.dir}/dst.mig")
        src.execute("migrate", {"uri": f"unix:{a.dir}/relay.mig"})
        end = time.monotonic() + a.timeout
        while True:
            q = src.execute("query-migrate")
            if q.get("status") in ("completed", "failed", "cancelled"):
                break
            if time.monotonic() > end:
                raise RuntimeError(f"migration not done in {a.timeout} s: {q}")
            time.sleep(0.05)
        for _ in range(50):  # total-time comes a moment after "completed"
            if q.get("status") != "completed" or q.get("total-time"):
                break
            time.sleep(0.01)
            q = src.execute("query-migrate")
        for t in relay.threads:
            t.join(10)
        ok = q.get("status") == "completed"
        if ok:
            for _ in range(200):
                if dst.execute("query-status")["status"] == "running":
                    break
                time.sleep(0.05)
            ok = dst.execute("query-status")["status"] == "running"
            dqt = Qtest(f"{a.dir}/dst.qtest")
            for off in (start, start + (a.fill_mb << 20) - 1):
                ok = ok and int(dqt.cmd(f"readb {off:#x}").split()[1], 16) == 0xa5
        ram = q.get("ram", {})
        print(json.dumps({
            "device": bool(a.src), "status": q.get("status"), "error": q.get("error-desc", ""),
            "total_ms": q.get("total-time", 0), "downtime_ms": q.get("downtime", 0),
            "setup_ms": q.get("setup-time", 0), "ram_bytes": ram.get("transferred", 0),
            "ram_dirty_syncs": ram.get("dirty-sync-count", 0), "wire_bytes": relay.forward,
            "vfio_bytes": q.get("vfio", {}).get("transferred"), "verified": ok}))
        return 0 if ok else 1
    finally:
        for pr in procs:
            pr.kill()
            pr.wait()
        for log in logs:
            log.close()


if __name__ == "__main__":
    sys.exit(main())
