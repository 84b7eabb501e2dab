#!/usr/bin/env python3
"""In the lab guest: boot the real Linux guest once, save it, run the scenarios from it.

  guest_qemu.py --kernel VMLINUX --initrd INITRD --append KARGS --src UUID --dst UUID
                --out DIR [--work DIR] [--scenarios live,file,cancel]

Run by tests/lab/guest/guest.sh inside the lab (the nested VMs' host), with two mdevmig
instances created. Each VM is a QEMU (TCG) with one instance assigned through vfio-pci,
its console (ttyS0) in a file of DIR, its second serial port (ttyS1, the guest's control
channel: guest-init.sh) on a unix socket and QMP on another.

1. boot: the guest boots on SRC, runs its boot checks and says "guest: ready" on the
   control channel; QEMU saves it with `migrate exec:cat > FILE` (the booted image).
2. each scenario restores that image into a fresh QEMU (-incoming exec:cat FILE), starts
   the guest's workloads (Linux's dmatest, bar2load on BAR2) and then
   - live:   QEMU migrates it (unix socket, loopback) to a QEMU on DST while they run;
             the destination stops them and checks;
   - file:   QEMU migrates it while they run to a file (exec:), a fresh QEMU on DST
             restores it and stops and checks;
   - cancel: QEMU starts migrating it to DST and cancels mid pre-copy; the source stops
             and checks.
   The guest stops its workloads and reports (dmatest's summaries, bar2load's check and
   its longest pause), unloads its driver and checks its log ("quit"). The harness checks
   those lines itself: 4 dmatest summaries with tests and 0 failures, bar2load PASS,
   "guest: PASS". It prints QEMU's migration figures next to the guest's.

Exit status 0 when every scenario passed. One QMP client: this one.
"""
import argparse
import fcntl
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time


TRACING = "/sys/kernel/tracing"


def log(msg):
    print(f"guest_qemu: {msg}", flush=True)


class Fail(Exception):
    pass


class Lines:
    """A line reader on a connected stream socket (QMP or the guest's control channel)."""

    def __init__(self, path, limit=60):
        deadline = time.time() + limit
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise Fail(f"cannot connect to {path}")
                time.sleep(0.2)
        self.buf = b""
        self.path = path

    def readline(self, timeout):
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return None
            except OSError as e:
                raise Fail(f"{self.path}: {e}")
            if not data:
                raise Fail(f"{self.path} closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")

    def send(self, text):
        # A QEMU that died (or a guest that powered off) is a failure, not a crash.
        try:
            self.sock.sendall(text.encode() + b"\n")
        except OSError as e:
            raise Fail(f"{self.path}: {e}")

    def close(self):
        self.sock.close()


def exit_status(proc, limit=5):
    """How PROC ended ("exit status N", "killed by SIGX"), waiting up to LIMIT seconds;
    None while it runs."""
    try:
        rc = proc.wait(limit)
    except subprocess.TimeoutExpired:
        return None
    return f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"


def memory_figures():
    """The lab's free memory and what the VMs' RAM files hold, for the log."""
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":", 1)
            info[key] = int(value.split()[0]) >> 10
    shm = os.statvfs("/dev/shm")
    return (f"MemAvailable {info.get('MemAvailable', '?')} MiB, Shmem {info.get('Shmem', '?')} "
            f"MiB, /dev/shm free {shm.f_bavail * shm.f_frsize >> 20} MiB")


class Qmp:
    # Events that say why a QEMU stopped or ended: a triple fault in the guest is a
    # reset with no other trace.
    END_EVENTS = ("SHUTDOWN", "RESET", "GUEST_PANICKED")

    def __init__(self, path, proc=None):
        self.proc = proc
        self.ends = []
        self.lines = Lines(path)
        greeting = json.loads(self.lines.readline(60) or "null")
        if not greeting or "QMP" not in greeting:
            raise Fail(f"no QMP greeting on {path}")
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        try:
            return self.exchange(name, args)
        except Fail as e:
            # Say how the QEMU ended when that is why its QMP failed.
            ended = exit_status(self.proc) if self.proc and name != "quit" else None
            if ended:
                self.drain()
                events = "".join(f"; {x}" for x in self.ends)
                raise Fail(f"{e}: QEMU ended ({ended}{events})") from None
            raise

    def note(self, reply):
        if reply.get("event") in self.END_EVENTS:
            data = reply.get("data", {})
            self.ends.append(f"event {reply['event']} "
                             f"{data.get('reason', data.get('action', ''))}".rstrip())

    def drain(self):
        """Reads what an ended QEMU left on the socket, for its end events."""
        try:
            while (line := self.lines.readline(0.2)) is not None:
                try:
                    self.note(json.loads(line))
                except ValueError:
                    pass
        except Fail:
            pass

    def exchange(self, name, args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.lines.send(json.dumps(msg))
        while True:
            line = self.lines.readline(120)
            if line is None:
                raise Fail(f"QMP {name}: no answer")
            reply = json.loads(line)
            if "event" in reply:
                self.note(reply)
                continue
            if "error" in reply:
                raise Fail(f"QMP {name}: {reply['error'].get('desc')}")
            return reply.get("return")


class Vm:
    """A nested QEMU with one mdevmig instance assigned."""

    def __init__(self, h, name, uuid, incoming=None, paused=False, device=True):
        self.name = name
        self.uuid = uuid
        self.dir = h.tmp
        base = os.path.join(self.dir, name)
        for ext in (".qmp", ".ctl"):
            if os.path.exists(base + ext):
                os.unlink(base + ext)
        self.out = h.out
        self.console = os.path.join(h.out, f"guest-console-{name}.log")
        # The guest's RAM is a file in /dev/shm and the translation cache is 32 MiB: the
        # lab kernel clears every page it frees (init_on_free=1), which under TCG on a
        # loaded machine is slow enough that a QEMU freeing its RAM and a 64 MiB cache in
        # its exit held a CPU of the lab for an RCU stall report (60 s). Exiting QEMUs
        # free only the cache and heap; the harness unlinks the file once the VM has
        # ended (finish: a truncation, which yields the CPU as it goes), unless a later
        # RAM check needs it. Kept until the lab powered off, the files of a whole run's
        # VMs outgrew /dev/shm (half the lab's memory): a destination that could not
        # store the pages it received died of SIGBUS mid-migration.
        self.ram = f"/dev/shm/guest_qemu-{name}.ram"
        self.keep_ram = False
        # QEMU before 9.0 loses guest RAM in migrations under TCG: syncing the dirty log of
        # a RAM block whose offset and size are multiples of 64 pages takes a fast path that
        # clears the bits without making the vCPUs' TLB entries trap the next store, so a
        # page stored to again after that is never sent (fixed by QEMU commit 03bfc2188f,
        # "physmem: Fix migration dirty bitmap coherency with TCG memory access"). The
        # restored guest then runs on stale pages (per-CPU areas, task structs) and dies.
        # 8 KiB more than 192 MiB sends every sync down the slow path, which resets the
        # TLBs. The RAM check of each restore (compare_ram) shows it.
        ram = "196616K" if h.qmajor < 9 and h.args.accel == "tcg" else "192M"
        accel = "tcg,tb-size=32" if h.args.accel == "tcg" else "kvm"
        cmd = [
            "qemu-system-x86_64", "-accel", accel, "-M", "pc,memory-backend=pc.ram",
            "-object", f"memory-backend-file,id=pc.ram,size={ram},mem-path={self.ram},share=on",
            "-cpu", "max" if h.args.accel == "tcg" else "qemu64,kvm=off", "-smp", "1", "-m", ram, "-nodefaults", "-no-user-config", "-display", "none",
            # A guest reset (a triple fault among them) or power-off pauses the VM with
            # its CPU state kept, for post_mortem(); the harness quits it over QMP.
            "-action", "reboot=shutdown,shutdown=pause", "-monitor", "none",
            "-serial", f"file:{self.console}",
            "-chardev", f"socket,id=ctl,path={base}.ctl,server=on,wait=off",
            "-serial", "chardev:ctl",
            "-qmp", f"unix:{base}.qmp,server=on,wait=off",
            "-kernel", h.args.kernel, "-initrd", h.args.initrd, "-append", h.args.append,
        ]
        if device and not h.args.no_device:
            cmd += ["-device", f"vfio-pci,sysfsdev=/sys/bus/mdev/devices/{uuid},rombar=0,{h.migprop}"]
        if incoming:
            cmd += ["-incoming", incoming]
        if paused:
            cmd += ["-S"]
        self.qlog = open(os.path.join(h.out, f"guest-qemu-{name}.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.qlog, stderr=subprocess.STDOUT)
        self.start = time.time()
        self.qmp = Qmp(base + ".qmp", self.proc)
        self.ctl = Lines(base + ".ctl")
        self.answers = []

    # Run states a VM does not leave by itself: waiting for another one is in vain.
    FINAL_STATES = ("shutdown", "guest-panicked", "internal-error", "io-error")

    def wait_running(self, limit, want="running"):
        deadline = time.time() + limit
        while True:
            status = self.qmp.cmd("query-status")["status"]
            if status == want:
                return
            if status in self.FINAL_STATES:
                self.post_mortem()
                raise Fail(f"{self.name}: {status}, not {want}{self.stopped()}")
            if time.time() > deadline or self.proc.poll() is not None:
                self.post_mortem()
                raise Fail(f"{self.name}: not {want} ({status}) after {limit} s")
            time.sleep(0.5)

    def stopped(self):
        """Why the guest stopped, from the QMP end events (empty if none came): a VM
        restored from a stream takes the run state the source had when it was saved."""
        if self.qmp.ends:
            return f" ({'; '.join(self.qmp.ends)})"
        return " (no end event here: the saved VM was in that state already)"

    def expect(self, pattern, limit):
        """Reads the control channel until a line matches PATTERN; returns that line.
        A "guest: ... FAIL" line ends the wait with a failure."""
        deadline = time.time() + limit
        while True:
            try:
                line = self.ctl.readline(max(0.1, min(5, deadline - time.time())))
            except Fail:
                self.post_mortem()
                raise
            if line is None and time.time() < deadline:
                # A guest that stopped (a panic, a reset, a power-off: -action pauses
                # it in state "shutdown") will not answer: fail now, not at the limit.
                status = self.qmp.cmd("query-status")["status"]
                if status in self.FINAL_STATES:
                    self.post_mortem()
                    raise Fail(f"{self.name}: {status} while waiting for '{pattern}'"
                               f"{self.stopped()}")
                continue
            if line is None:
                self.post_mortem()
                raise Fail(f"{self.name}: no '{pattern}' from the guest within {limit} s")
            if not line.strip():
                continue
            self.answers.append(line)
            print(f"  [{self.name}] {line}", flush=True)
            if re.search(pattern, line):
                return line
            if re.match(r"guest: .*FAIL", line):
                raise Fail(f"{self.name}: {line}")

    def post_mortem(self):
        """Logs what QEMU says of a guest that stopped answering: its run state, the
        events that stopped it and, when it is not running, its CPU's registers."""
        if self.proc.poll() is not None:
            return
        try:
            status = self.qmp.cmd("query-status")["status"]
            events = "".join(f"; {x}" for x in self.qmp.ends)
            log(f"{self.name}: QEMU's run state {status}{events}")
            # Where the vCPU is (three samples while it runs), and the interrupt
            # controllers: a serial interrupt lost across a migration would leave the
            # guest running with a dead control channel.
            for _ in range(1 if status != "running" else 3):
                regs = self.hmp("info registers")
                for line in regs.splitlines():
                    if re.match(r"(RAX|RSI|R8 |R12|RIP|ES |CS |SS |GDT|IDT|CR0|EFER)", line):
                        log(f"{self.name}: {line.strip()}")
                time.sleep(0.5)
            for what in ("info pic", "info irq"):
                for line in self.hmp(what).splitlines()[:40]:
                    log(f"{self.name}: {what}: {line.rstrip()}")
        except Fail as e:
            log(f"{self.name}: no post-mortem: {e}")
        self.kvm_trace()

    def kvm_trace(self):
        """With MDEVMIG_GUEST_TRACE=1 (guest.sh turns on the lab kernel's KVM trace
        events): stops the trace, keeps it in the run folder and logs this VM's last
        events (its vCPU's exits and injections up to the stop: where a triple fault
        began)."""
        tracing = TRACING  # a module constant, so a test can point it elsewhere
        if os.environ.get("MDEVMIG_GUEST_TRACE") != "1" or not os.path.exists(f"{tracing}/trace"):
            return
        with open(f"{tracing}/tracing_on", "w") as f:
            f.write("0")
        keep = os.path.join(self.out, f"kvm-trace-{self.name}.txt")
        shutil.copyfile(f"{tracing}/trace", keep)
        tids = set(os.listdir(f"/proc/{self.proc.pid}/task")) if self.proc.poll() is None else set()
        mine = []
        with open(keep, errors="replace") as f:
            for line in f:
                m = re.match(r"\s*\S.*?-(\d+)\s+\[\d+\]", line)
                if m and m.group(1) in tids:
                    mine.append(line.rstrip())
        for line in mine[-60:]:
            log(f"{self.name}: kvm trace: {line.strip()}")
        log(f"{self.name}: kvm trace kept in {keep} ({len(mine)} lines of this VM's)")

    def hmp(self, line):
        return self.qmp.cmd("human-monitor-command", **{"command-line": line}) or ""

    def command(self, cmd, pattern, limit):
        self.ctl.send(cmd)
        return self.expect(pattern, limit)

    def migrate(self, uri, limit, cancel_after=None, raise_after=None, fault_after=None):
        """QMP migrate to URI; polls query-migrate until it ends. Returns its last answer.
        RAISE_AFTER: seconds of pre-copy after which the downtime limit goes up to 10 s
        (a guest that dirties faster than pre-copy sends would never converge).
        FAULT_AFTER: (seconds, function): the function runs once after that much pre-copy
        (e.g. kills the destination)."""
        self.qmp.cmd("migrate", uri=uri)
        t0 = time.time()
        self.raised = None
        while True:
            info = self.qmp.cmd("query-migrate")
            status = info.get("status")
            # A guest that resets or powers off while it is migrated (QEMU pauses it)
            # would still be saved, in run state "shutdown": say so here, not at the
            # destination.
            if self.qmp.ends:
                if status not in ("completed", "failed", "cancelled"):
                    self.qmp.cmd("migrate_cancel")
                self.post_mortem()
                raise Fail(f"{self.name}: the guest stopped {time.time() - t0:.1f} s into "
                           f"the migration ({status}; {'; '.join(self.qmp.ends)})")
            if status in ("completed", "failed", "cancelled"):
                return info
            if raise_after is not None and status == "active" and time.time() - t0 > raise_after:
                ram = info.get("ram", {})
                self.raised = (f"not converged after {time.time() - t0:.0f} s "
                               f"({ram.get('dirty-sync-count', '?')} dirty syncs, "
                               f"{ram.get('transferred', 0) >> 10} KiB of RAM sent, "
                               f"{ram.get('remaining', 0) >> 10} KiB remaining)")
                log(f"{self.name}: {self.raised}: downtime-limit raised to 10000 ms")
                self.qmp.cmd("migrate-set-parameters", **{"downtime-limit": 10000})
                raise_after = None
            if cancel_after is not None and status == "active" and time.time() - t0 > cancel_after:
                log(f"{self.name}: migrate_cancel after {time.time() - t0:.1f} s of pre-copy "
                    f"({info.get('ram', {}).get('transferred', 0) >> 10} KiB of RAM sent)")
                self.qmp.cmd("migrate_cancel")
                cancel_after = None
            if fault_after is not None and status == "active" and time.time() - t0 > fault_after[0]:
                fault_after[1](time.time() - t0, info)
                fault_after = None
            if time.time() - t0 > limit:
                self.qmp.cmd("migrate_cancel")
                raise Fail(f"{self.name}: migration not done after {limit} s ({status})")
            time.sleep(0.5)

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.qmp.cmd("quit")
            except Fail:
                pass
        self.finish(30)

    def finish(self, limit):
        try:
            self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if not self.keep_ram:
            drop_ram(self.ram)
        self.qlog.close()
        for s in (self.qmp.lines, self.ctl):
            s.close()


def drop_ram(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def quit_running(*vms):
    """Quits each VM that was started and still runs (a scenario's cleanup)."""
    for vm in vms:
        if vm and vm.proc.poll() is None:
            vm.quit()


def mig_figures(info):
    ram = info.get("ram", {})
    parts = [f"total {info.get('total-time', '?')} ms", f"downtime {info.get('downtime', '?')} ms"]
    if "setup-time" in info:
        parts.append(f"setup {info['setup-time']} ms")
    parts.append(f"RAM {ram.get('transferred', 0) >> 10} KiB sent")
    if "dirty-sync-count" in ram:
        parts.append(f"{ram['dirty-sync-count']} dirty syncs")
    if "vfio" in info:
        parts.append(f"device {info['vfio'].get('transferred', 0) >> 10} KiB")
    return ", ".join(parts)


# /dev/kvm and VM ioctls (linux/kvm.h): _IO(KVMIO, n) with KVMIO 0xAE.
KVM_CREATE_VM = 0xAE01
KVM_CREATE_VCPU = 0xAE41
KVM_CREATE_IRQCHIP = 0xAE60


def hold_kvm():
    """Creates one idle KVM VM (an in-kernel irqchip, one vCPU that never runs) and returns
    its file descriptors; the caller keeps them open for as long as it starts VMs.

    Why: the lab kernel patches its own code (static keys, through int3 breakpoints)
    whenever the number of KVM VMs goes from 0 to 1 or back (the scheduler's
    preempt-notifier key, which KVM takes for each VM). Under the lab's TCG emulator
    another vCPU then sometimes runs a stale copy of the patched code: "Oops: int3" in
    __schedule on the 6.12 lab kernel, at a nested QEMU's start or exit. With this VM
    held the count never returns to 0, so only its own creation patches code, and it is
    created while the other CPUs are offline (no other CPU runs kernel code then)."""
    others = [p for p in sorted(glob.glob("/sys/devices/system/cpu/cpu[0-9]*/online"))
              if open(p).read().strip() == "1"]
    try:
        for p in others:
            with open(p, "w") as f:
                f.write("0")
        kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
        vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
        fcntl.ioctl(vm, KVM_CREATE_IRQCHIP, 0)
        vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
    finally:
        for p in others:
            with open(p, "w") as f:
                f.write("1")
    return (kvm, vm, vcpu)


class Harness:
    def __init__(self, args):
        self.args = args
        self.out = args.out
        self.tmp = args.work
        os.makedirs(self.tmp, exist_ok=True)
        ver = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                             text=True).stdout.split("\n")[0]
        m = re.search(r"version (\d+)\.", ver)
        self.qmajor = int(m.group(1)) if m else 0
        # QEMU up to 7.2 has the v1 migration region behind x-enable-migration, from 8.1
        # on v2 behind enable-migration (as tools/qemu/process.cc picks it).
        self.migprop = "x-enable-migration=on" if self.qmajor < 8 else "enable-migration=on"
        self.image = os.path.join(self.tmp, "booted.img")
        self.times = []
        log(f"{ver}, {self.migprop}, accelerator {args.accel}")
        if args.accel == "kvm":
            self.kvm_hold = hold_kvm()
            log("an idle KVM VM is held for the run (the kernel's static keys stay put)")

    def timed(self, name, t0):
        secs = time.time() - t0
        self.times.append((name, secs))
        log(f"{name}: {secs:.0f} s")

    def boot(self):
        t0 = time.time()
        vm = Vm(self, "boot", self.args.src)
        self.boot_ram = vm.ram
        vm.keep_ram = True  # every restore of the booted image compares its RAM with it
        try:
            line = vm.expect(r"^guest: ready after", self.args.boot_limit)
            log(f"boot: the guest is {line[len('guest: '):]} "
                f"({time.time() - t0:.0f} s since QEMU started)")
            t1 = time.time()
            info = vm.migrate(f"exec:cat > {self.image}", 300)
            if info["status"] != "completed":
                raise Fail(f"saving the booted guest: {info['status']} {info.get('error-desc', '')}")
            log(f"boot: saved to {self.image} ({os.path.getsize(self.image) >> 20} MiB) in "
                f"{time.time() - t1:.1f} s: {mig_figures(info)}")
        finally:
            vm.quit()
            self.show_console(vm)
        self.timed("boot (nested QEMU start to saved image)", t0)

    def show_console(self, vm):
        try:
            with open(vm.console, errors="replace") as f:
                for line in f:
                    line = line.rstrip("\r\n")
                    if line.startswith("guest") and line not in vm.answers:
                        print(f"  [{vm.name} console] {line}")
        except OSError:
            pass

    def restore(self, name, uuid, image, saved_ram=None):
        """A fresh QEMU restores IMAGE. SAVED_RAM (unless --no-ramcheck): the RAM file of the
        VM that saved IMAGE, stopped since; the restored VM starts paused, its RAM must
        equal that file page for page before it runs."""
        t0 = time.time()
        check = self.args.ramcheck and saved_ram
        vm = Vm(self, name, uuid, incoming=f"exec:cat {image}", paused=check)
        try:
            if check:
                vm.wait_running(300, want="paused")
                self.compare_ram(saved_ram, vm.ram, name)
                vm.qmp.cmd("cont")
            vm.wait_running(300)
        except Fail:
            vm.quit()  # it holds the instance the next scenario restores onto
            raise
        log(f"{name}: restored from {os.path.basename(image)} in {time.time() - t0:.1f} s")
        return vm

    def compare_ram(self, saved, restored, name):
        """Guest RAM of the stopped source against the restored VM's before it runs:
        whatever differs is memory the migration lost (or something wrote after the
        source stopped); names the guest-physical pages."""
        diff = []
        with open(saved, "rb") as a, open(restored, "rb") as b:
            page = 0
            while True:
                x, y = a.read(1 << 20), b.read(1 << 20)
                if not x and not y:
                    break
                if x != y:
                    for i in range(0, max(len(x), len(y)), 4096):
                        if x[i:i + 4096] != y[i:i + 4096]:
                            diff.append(page + i // 4096)
                page += 1 << 8
        if diff:
            with open(saved, "rb") as a, open(restored, "rb") as b:
                for p in diff[:6]:
                    a.seek(p << 12)
                    b.seek(p << 12)
                    x, y = a.read(4096), b.read(4096)
                    at = [i for i in range(4096) if x[i] != y[i]]
                    log(f"{name}: page {p << 12:#x}: {len(at)} bytes differ, "
                        f"{at[0]:#x}..{at[-1]:#x}; saved {x[at[0] & ~15:(at[0] & ~15) + 32].hex()}"
                        f" restored {y[at[0] & ~15:(at[0] & ~15) + 32].hex()}")
            shown = ", ".join(f"{p << 12:#x}" for p in diff[:40])
            raise Fail(f"{name}: {len(diff)} guest RAM pages differ from the saved VM's "
                       f"before the restored VM ran: {shown}")
        log(f"{name}: guest RAM equals the saved VM's, page for page ({page >> 8} MiB)")

    def verify(self, vm, what):
        """Stops the workloads and checks their lines (the guest checks them too)."""
        vm.answers = []
        vm.command("stop", r"^guest: \[[0-9.]+\] stopped", self.args.step_limit)
        # dmatest runs in rounds (guest-init.sh): 4 summaries a round, every one with tests
        # and 0 failures. The guest tallies them; summaries with failures come verbatim.
        tally = [m for a in vm.answers for m in [re.match(
            r"guest: dmatest: (\d+) of (\d+) summaries with tests and 0 failures, (\d+) tests, "
            r"(\d+) KB/s summed", a)] if m]
        failed = [a for a in vm.answers if re.search(r"summary \d+ tests, [1-9]\d* failures", a)]
        load = [a for a in vm.answers if a.startswith("guest: bar2load: PASS")]
        good, sums, kbs = (int(tally[0][i]) for i in (1, 2, 4)) if tally else (0, 0, 0)
        if sums < 4 or good != sums or failed or not load:
            raise Fail(f"{what}: the guest's lines show {good} of {sums} dmatest summaries "
                       f"with 0 failures and {'a' if load else 'no'} bar2load PASS")
        kbs = kbs * 4 / sums  # the 4 threads' rate, averaged over the rounds
        pause = re.search(r"longest pause ([0-9.]+) ms", load[0])
        log(f"{what}: dmatest {kbs / 1024:.2f} MB/s (4 threads), 0 failures; BAR2 as written"
            f"; the guest's longest pause {pause.group(1) if pause else '?'} ms")
        return float(pause.group(1)) if pause else None

    def finish_guest(self, vm):
        vm.command("quit", r"^guest: PASS", self.args.step_limit)
        vm.wait_running(60, want="shutdown")  # the guest powered off: QEMU pauses
        vm.quit()

    def workload(self, vm, secs=None):
        vm.command("start", r"^guest: \[[0-9.]+\] started", self.args.step_limit)
        time.sleep(self.args.run if secs is None else secs)

    def scenario_live(self):
        t0 = time.time()
        sock = os.path.join(self.tmp, "mig.sock")
        src = self.restore("live-src", self.args.src, self.image, saved_ram=self.boot_ram)
        dst = None
        try:
            # dmatest's rate before, during and after a migration.
            self.workload(src)
            self.verify(src, "live: before")
            dst = Vm(self, "live-dst", self.args.dst, incoming=f"unix:{sock}")
            self.workload(src)
            self.set_params(src)
            info = src.migrate(f"unix:{sock}", self.args.mig_limit,
                               raise_after=self.args.converge)
            if info["status"] != "completed":
                raise Fail(f"live: migration {info['status']} {info.get('error-desc', '')}")
            dst.wait_running(60)
            log(f"live: migrated: {mig_figures(info)}")
            src.quit()
            time.sleep(self.args.run)
            pause = self.verify(dst, "live: during (source, migration, destination)")
            log(f"live: QEMU's downtime {info.get('downtime')} ms; the guest's longest pause "
                f"{pause} ms")
            self.workload(dst)
            self.verify(dst, "live: after")
            self.finish_guest(dst)
        finally:
            quit_running(src, dst)
        self.timed("scenario live", t0)

    def scenario_file(self):
        t0 = time.time()
        image = os.path.join(self.tmp, "file.img")
        src = self.restore("file-src", self.args.src, self.image, saved_ram=self.boot_ram)
        dst = None
        try:
            self.workload(src)
            self.set_params(src)
            info = src.migrate(f"exec:cat > {image}", self.args.mig_limit,
                               raise_after=self.args.converge)
            if info["status"] != "completed":
                raise Fail(f"file: migration {info['status']} {info.get('error-desc', '')}")
            log(f"file: saved ({os.path.getsize(image) >> 20} MiB): {mig_figures(info)}")
            src.keep_ram = True
            src.quit()
            dst = self.restore("file-dst", self.args.dst, image, saved_ram=src.ram)
            drop_ram(src.ram)
            time.sleep(self.args.run)
            pause = self.verify(dst, "file: source, file, restored VM")
            log(f"file: QEMU's downtime {info.get('downtime')} ms; the guest's longest pause "
                f"{pause} ms")
            self.finish_guest(dst)
        finally:
            quit_running(src, dst)
        self.timed("scenario file", t0)

    def scenario_cancel(self):
        t0 = time.time()
        sock = os.path.join(self.tmp, "cancel.sock")
        src = self.restore("cancel-src", self.args.src, self.image, saved_ram=self.boot_ram)
        dst = None
        try:
            dst = Vm(self, "cancel-dst", self.args.dst, incoming=f"unix:{sock}")
            self.workload(src)
            # Slow enough that pre-copy is still under way when it is cancelled.
            src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 20})
            info = src.migrate(f"unix:{sock}", self.args.mig_limit, cancel_after=self.args.cancel)
            if info["status"] != "cancelled":
                raise Fail(f"cancel: the migration ended {info['status']}, not cancelled")
            status = src.qmp.cmd("query-status")["status"]
            if status != "running":
                raise Fail(f"cancel: the source is {status} after the cancel, not running")
            log(f"cancel: cancelled mid pre-copy, the source runs on")
            dst.finish(30)
            time.sleep(self.args.run)
            self.verify(src, "cancel: source across the cancelled migration")
            self.finish_guest(src)
        finally:
            quit_running(src, dst)
        self.timed("scenario cancel", t0)

    def scenario_restore(self):
        """A restore and no migration: the restored guest runs its workloads (dmatest,
        bar2load) on the device it found there, with their checks."""
        t0 = time.time()
        vm = self.restore("restore", self.args.src, self.image, saved_ram=self.boot_ram)
        try:
            self.workload(vm)
            self.verify(vm, "restore")
            self.finish_guest(vm)
        finally:
            if vm.proc.poll() is None:
                vm.quit()
        self.timed("scenario restore", t0)

    STRESS_FAULTS = ("none", "cancel", "kill-dst", "refuse")

    def scenario_stress(self):
        """Live migrations back and forth between the two instances while the workloads
        run, each with a fault from --stress-faults (named as tools/stress names them):
          none      the migration completes; the guest runs on the destination;
          cancel    migrate_cancel mid pre-copy; the source runs on;
          kill-dst  the destination QEMU is killed (SIGKILL) mid pre-copy; the migration
                    fails, the source runs on;
          refuse    the destination has no mdevmig device, so it cannot load the device's
                    state and quits; the migration fails, the source runs on.
        Each round starts the workloads on the VM that runs, migrates it to the other
        instance with the round's fault, checks the migration's outcome and that QEMU's
        status is `running` on the side that must run on, and stops the workloads there
        (every dmatest summary with 0 failures, bar2load PASS). A completed migration
        turns the direction round."""
        t0 = time.time()
        faults = self.args.stress_faults.split(",")
        sock = os.path.join(self.tmp, "stress.sock")
        vm = self.restore("stress-0", self.args.src, self.image, saved_ram=self.boot_ram)
        other = self.args.dst
        dst = None
        tally = {}
        try:
            for r in range(1, self.args.stress_rounds + 1):
                fault = faults[(r - 1) % len(faults)]
                what = f"stress {r}/{self.args.stress_rounds} ({fault}, {vm.name} to {other[:8]})"
                dst = Vm(self, f"stress-{r}", other, incoming=f"unix:{sock}",
                         device=fault != "refuse")
                vm.answers = []
                self.workload(vm, self.args.stress_run)
                self.set_params(vm)
                fault_after = None
                if fault != "none":
                    # Slow enough that pre-copy is still under way when the fault comes.
                    vm.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 20})
                if fault == "cancel":
                    info = vm.migrate(f"unix:{sock}", self.args.mig_limit,
                                      cancel_after=self.args.stress_fault_at)
                else:
                    if fault == "kill-dst":
                        def kill(secs, info, dst=dst):
                            log(f"{dst.name}: SIGKILL after {secs:.1f} s of pre-copy "
                                f"({info.get('ram', {}).get('transferred', 0) >> 10} KiB of RAM sent)")
                            dst.proc.kill()
                        fault_after = (self.args.stress_fault_at, kill)
                    info = vm.migrate(f"unix:{sock}", self.args.mig_limit,
                                      raise_after=self.args.converge, fault_after=fault_after)
                want = {"none": "completed", "cancel": "cancelled"}.get(fault, "failed")
                if info["status"] != want:
                    raise Fail(f"{what}: the migration ended {info['status']}, not {want} "
                               f"{info.get('error-desc', '')}")
                if fault == "none":
                    dst.wait_running(60)
                    log(f"{what}: migrated: {mig_figures(info)}")
                    vm.quit()
                    vm, other, dst = dst, vm.uuid, None
                    time.sleep(self.args.stress_run)
                else:
                    status = vm.qmp.cmd("query-status")["status"]
                    if status != "running":
                        raise Fail(f"{what}: the source is {status} after the migration "
                                   f"{info['status']}, not running")
                    dst.finish(30)
                    rc = dst.proc.returncode
                    if fault != "kill-dst" and rc == 0:
                        raise Fail(f"{what}: the destination QEMU exited with status 0")
                    why = info.get("error-desc", "")
                    log(f"{what}: migration {info['status']}{': ' + why if why else ''}; "
                        f"the destination QEMU ended with status {rc}; the source runs on")
                    dst = None
                pause = self.verify(vm, what)
                tally[fault] = tally.get(fault, 0) + 1
                if fault == "none":
                    log(f"{what}: QEMU's downtime {info.get('downtime')} ms; the guest's "
                        f"longest pause {pause} ms")
            log("stress: " + ", ".join(f"{n} x {f}" for f, n in tally.items()) +
                f": the guest verified after each, now on {vm.name}")
            self.finish_guest(vm)
        finally:
            quit_running(vm, dst)
        self.timed("scenario stress", t0)

    def set_params(self, vm):
        vm.qmp.cmd("migrate-set-parameters",
                   **{"downtime-limit": self.args.downtime, "max-bandwidth": 1 << 30})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kernel", required=True)
    p.add_argument("--initrd", required=True)
    p.add_argument("--append", required=True)
    p.add_argument("--src", required=True, help="mdevmig instance (UUID) of the sources")
    p.add_argument("--dst", required=True, help="mdevmig instance (UUID) of the destinations")
    p.add_argument("--out", required=True, help="folder for consoles and QEMU logs")
    p.add_argument("--work", default="/tmp/guest_qemu", help="folder for images and sockets")
    p.add_argument("--scenarios", default="live,file,cancel,stress",
                   help="comma-separated: live, file, cancel, stress, restore; none: boot and "
                   "save only")
    p.add_argument("--no-device", action="store_true",
                   help="no mdevmig instance in the VMs (the guest needs guest.nodev=1)")
    p.add_argument("--no-ramcheck", dest="ramcheck", action="store_false",
                   help="restores start running; by default they start paused and their RAM "
                   "must equal the saved VM's before they run")
    p.add_argument("--run", type=float, default=10, help="seconds the workloads run per phase")
    p.add_argument("--cancel", type=float, default=5, help="seconds of pre-copy before the cancel")
    p.add_argument("--downtime", type=int, default=300, help="QEMU downtime-limit (ms)")
    p.add_argument("--converge", type=float, default=60,
                   help="seconds of pre-copy before the downtime limit is raised to 10 s")
    p.add_argument("--stress-rounds", type=int, default=4,
                   help="stress: migrations (each with the next fault of --stress-faults)")
    p.add_argument("--stress-faults", default="none,kill-dst,none,refuse,none,cancel",
                   help="stress: faults in turn, of " + ", ".join(Harness.STRESS_FAULTS))
    p.add_argument("--stress-run", type=float, default=5,
                   help="stress: seconds the workloads run before and after a migration")
    p.add_argument("--stress-fault-at", type=float, default=3,
                   help="stress: seconds of pre-copy before a cancel or kill-dst")
    p.add_argument("--accel", choices=("kvm", "tcg"),
                   default="kvm" if os.path.exists("/dev/kvm") else "tcg",
                   help="the nested VMs' accelerator (default: kvm where /dev/kvm exists)")
    p.add_argument("--keep-going", action="store_true",
                   help="run the scenarios after a failed one too (by default the run ends "
                   "at the first failure)")
    p.add_argument("--boot-limit", type=float, default=1800)
    p.add_argument("--step-limit", type=float, default=300)
    p.add_argument("--mig-limit", type=float, default=600)
    args = p.parse_args()
    scenarios = [] if args.scenarios == "none" else args.scenarios.split(",")
    for s in scenarios:
        if s not in ("live", "file", "cancel", "stress", "restore"):
            p.error(f"unknown scenario {s} (live, file, cancel, stress, restore)")
    for f in args.stress_faults.split(","):
        if f not in Harness.STRESS_FAULTS:
            p.error(f"unknown stress fault {f!r} ({', '.join(Harness.STRESS_FAULTS)})")
    if args.stress_rounds < 1:
        p.error("--stress-rounds must be at least 1")
    h = Harness(args)
    failed = []
    try:
        h.boot()
    except Fail as e:
        log(f"FAIL boot: {e} ({memory_figures()})")
        return 1
    for i, s in enumerate(scenarios):
        try:
            getattr(h, f"scenario_{s}")()
            log(f"PASS {s}")
        except Fail as e:
            log(f"FAIL {s}: {e} ({memory_figures()})")
            failed.append(s)
            if not args.keep_going and scenarios[i + 1:]:
                log(f"not run after that failure: {', '.join(scenarios[i + 1:])} "
                    "(--keep-going runs them)")
                break
    log("times: " + ", ".join(f"{n} {t:.0f} s" for n, t in h.times))
    if failed:
        log(f"FAIL: {', '.join(failed)}")
        return 1
    log("PASS: boot" + "".join(", " + s for s in scenarios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
