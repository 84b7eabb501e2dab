// mdevmig qemu-migrate: QEMU live-migrates a VM that has an mdevmig device, while a
// qtest-driven guest keeps the device busy, and the harness verifies the destination
// (or the file restored into a fresh QEMU): device memory, registers, DMA-written guest
// RAM, the queue going on where it stopped, interrupts.
#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "migration/vfio/mdev.h"
#include "tools/cli/args.h"
#include "tools/cli/choice_options.h"
#include "tools/cli/command.h"
#include "tools/cli/context.h"
#include "tools/cli/device_arg.h"
#include "tools/cli/json_out.h"
#include "tools/cli/report_arg.h"
#include "tools/qemu/harness.h"
#include "tools/qemu/nodevice.h"
#include "tools/qemu/report.h"
#include "tools/report/convert.h"

namespace mdevmig::cli {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
constexpr const char* kCmd = "qemu-migrate";
constexpr std::array<std::string_view, 2> kTransports{"unix", "file"};
// What only a run with the device takes: refused with --no-device.
constexpr std::array<std::string_view, 17> kDeviceOnly{
    "src",    "dst",   "type",  "dst-type", "parent", "protocol",       "irq",  "writes", "dma",
    "warmup", "after", "fault", "fault-at", "seed",   "switchover-ack", "file", "report"};

Result<mdev::MdevInstance> instance(const Args& a, const char* uuid_opt, const std::string& type) {
  if (auto uuid = a.get(uuid_opt)) return mdev::MdevInstance::adopt(canonical_uuid(*uuid));
  return mdev::MdevInstance::create(type, a.get("parent").value_or(""));
}

// Everything the command line asks for, checked.
struct Setup {
  qemu::HarnessOptions opt;
  qemu::MigrationPlan plan;
  uint64_t warmup = 0, after = 0;  // ms of workload before and after the migration
  bool no_device = false;          // --no-device: the VM without the device
  std::optional<ReportFile> report_file;
};

Result<Setup> parse_setup(const Args& a);

// What a migration ended with, for the report.
struct Outcome {
  std::string src_uuid, dst_uuid, src_type, dst_type;
  uint64_t src_mem = 0, dst_mem = 0;
  qemu::RoundReport round;
  std::optional<qemu::Verification> again;  // the VM where it landed, after more workload
  uint64_t seq_before = 0, seq_mid = 0;     // the queue's SEQ before and right after the migration
  bool good = false;
};

}  // namespace

Args qemu_migrate_args() {
  Args a("qemu-migrate [options]",
         "Migrates a QEMU VM with an mdevmig device (vfio-pci on an mdev instance) to a second "
         "instance,\n"
         "live over a unix socket or saved to a file and restored into a fresh QEMU, while a "
         "qtest-driven\n"
         "guest keeps the device busy (BAR2 writes, DMA into guest RAM, interrupts). Verifies that "
         "the\n"
         "destination holds exactly the expected state and that the DMA queue goes on there.\n"
         "With --no-device: the same VM (RAM, --guest-fill, QEMU options) without the device, to "
         "see what\n"
         "the device adds to a migration.");
  a.option("src", "UUID", "source instance (default: create one)");
  a.option("dst", "UUID", "destination instance (default: create one)");
  a.option("type", "TYPE", "type of the instances created (full, half, quarter, eighth)",
           "quarter");
  a.option("dst-type", "TYPE", "type of the destination created (default: --type)");
  a.option("parent", "NAME", "parent to create instances on (default: the first with room)");
  a.option("qemu-binary", "PATH", "QEMU to run", "qemu-system-x86_64");
  declare_protocol(a,
                   "VFIO migration of that QEMU: v1 (<= 7.2, x-enable-migration), v2 (>= 8.1, "
                   "enable-migration), auto: by its version");
  a.option("transport", choice_metavar(kTransports),
           "live over a unix socket, or save to a file and restore", std::string(kTransports[0]));
  a.option("file", "PATH", "--transport file: the save file (default: in the work directory)");
  declare_irq(a, "how the device interrupts the guest");
  a.option("bandwidth", "SIZE", "max-bandwidth during pre-copy, bytes/s", "32M");
  a.option("downtime", "MS", "downtime-limit from the switchover on", "300");
  a.option("passes", "N", "switch over after the first full pass and N more dirty passes", "2");
  a.option("delay", "MS", "... and at least this long after the first full pass", "0");
  a.option("writes", "N", "BAR2 writes per second by the guest (each to a new page)", "100");
  a.option("dma", "N", "DMA descriptors per second by the guest", "20");
  a.option("warmup", "MS", "workload before the migration", "500");
  a.option("after", "MS", "workload on the destination after the migration", "500");
  declare_fault(a, "inject: ");
  a.option("fault-at", "FRACTION", "when: this fraction of device memory into the stream", "0.5");
  a.option("guest-mem", "MB", "VM memory", "128");
  a.option("guest-fill", "MB",
           "fill this much guest RAM (from 8 MiB on) with non-zero pages at boot", "0");
  a.option("seed", "N", "workload seed", "1");
  a.option("workdir", "DIR", "sockets, logs and files (default: a temporary directory, removed)");
  a.option("qemu-args", "ARGS", "extra QEMU arguments, space-separated (e.g. \"-trace vfio_*\")");
  a.flag("switchover-ack",
         "QEMU >= 8.1: switch over only once the destination loaded the device's initial data");
  a.option("multifd", "N",
           "QEMU >= 10.0, --transport unix: N multifd channels (0: off); RAM and the device's "
           "stop-copy data go over them",
           "0");
  a.flag("no-device",
         "the same VM without the vfio-pci device and without a workload (needs no mdevmig.ko), "
         "migrated live over a unix socket, with the same QEMU figures; verifies what still "
         "applies: the destination runs, the source is left in postmigrate, and 16 of "
         "--guest-fill's pages arrived. Not with --src, --dst, --type, --dst-type, --parent, "
         "--protocol, --irq, --writes, --dma, --warmup, --after, --fault, --fault-at, --seed, "
         "--switchover-ack, --file, --report, --transport file");
  a.flag("keep", "keep the work directory");
  a.flag("verbose", "log each step on stderr");
  a.flag("json", "print the report as JSON");
  a.option("report", "FILE", report_help(false));
  return a;
}

namespace {

// Every value is checked here, before an instance is adopted or created.
Result<Setup> parse_setup(const Args& a) {
  Setup setup;
  qemu::HarnessOptions& opt = setup.opt;
  qemu::MigrationPlan& plan = setup.plan;
  setup.no_device = a.has("no-device");
  if (setup.no_device) {
    for (std::string_view name : kDeviceOnly)
      if (a.has(name))
        return usage_error("--" + std::string(name),
                           "is for a VM with the device, not with --no-device");
    if (a.get("transport") == "file")
      return usage_error("--transport", "--no-device migrates live only (unix)");
  }
  const auto proto = MDEVMIG_TRY(get_protocol(a));
  const auto irq = MDEVMIG_TRY(get_irq(a));
  const auto fault = MDEVMIG_TRY(get_fault(a));
  const std::string_view transport =
      kTransports[MDEVMIG_TRY(a.get_choice("transport", kTransports))];
  if (auto e = check_instance_pair(a, "src", "dst")) return *e;
  auto bw = a.get_size("bandwidth", 1);
  auto downtime = a.get_uint("downtime", 0, kMaxDowntimeMs);
  auto passes = a.get_uint("passes", 0, 1000);
  auto delay = a.get_uint("delay", 0, kMaxDelayMs);
  auto writes = a.get_double("writes", 0, kMaxGuestOpsPerS);
  auto dma = a.get_double("dma", 0, kMaxGuestOpsPerS);
  auto w = a.get_uint("warmup", 0, kMaxDelayMs);
  auto af = a.get_uint("after", 0, kMaxDelayMs);
  auto at = a.get_double("fault-at", 0, 1, /*open=*/true);
  auto mem = a.get_uint("guest-mem", 16, 1u << 20);
  auto fill = a.get_uint("guest-fill", 0, 1u << 20);
  auto seed = a.get_uint("seed");
  auto multifd = a.get_uint("multifd", 0, 255);
  for (const Result<uint64_t>* r :
       {&bw, &downtime, &passes, &delay, &w, &af, &mem, &fill, &seed, &multifd})
    if (!*r) return r->error();
  for (const Result<double>* r : {&writes, &dma, &at})
    if (!*r) return r->error();
  auto rf = report_arg(a, false);
  if (!rf) return rf.error();
  setup.report_file = std::move(*rf);
  if (*multifd > 0 && transport != "unix")
    return usage_error("--multifd", "needs --transport unix (QEMU saves to a file on one channel)");
  if (*fill > 0 && *fill + 8 >= *mem)
    return usage_error("--guest-fill",
                       "must leave room below --guest-mem (" + std::to_string(*mem) + " MB)");
  opt.vm.qemu_binary = *a.get("qemu-binary");
  opt.vm.protocol = proto;
  opt.vm.mem_mb = static_cast<uint32_t>(*mem);
  opt.guest_fill_mb = static_cast<uint32_t>(*fill);
  opt.vm.dir = a.get("workdir").value_or("");
  if (auto extra = a.get("qemu-args")) {
    for (std::size_t pos = 0; pos < extra->size();) {
      std::size_t end = extra->find(' ', pos);
      if (end == std::string::npos) end = extra->size();
      if (end > pos) opt.vm.extra_args.push_back(extra->substr(pos, end - pos));
      pos = end + 1;
    }
  }
  opt.irq = irq;
  opt.rates.bar2_writes_per_s = *writes;
  opt.rates.descs_per_s = *dma;
  opt.seed = *seed;
  opt.keep_dir = a.has("keep");
  if (a.has("verbose"))
    opt.log = [](const std::string& s) {
      std::fprintf(stderr, "  [qemu-migrate] %s\n", s.c_str());
    };
  plan.transport = transport == "unix" ? qemu::Transport::kUnix : qemu::Transport::kFile;
  plan.file = a.get("file").value_or("");
  plan.max_bandwidth = *bw;
  plan.downtime_limit_ms = static_cast<uint32_t>(*downtime);
  plan.min_passes = static_cast<uint32_t>(*passes);
  plan.switchover_delay = std::chrono::milliseconds(*delay);
  plan.fault = fault;
  plan.fault_point = *at;
  plan.switchover_ack = a.has("switchover-ack");
  plan.multifd_channels = static_cast<uint32_t>(*multifd);
  setup.warmup = *w;
  setup.after = *af;
  return setup;
}

}  // namespace

namespace {

// --report: the picture of the migration, with the instances and the verdict.
void write_qemu_picture(const Setup& setup, const Outcome& o) {
  const qemu::HarnessOptions& opt = setup.opt;
  report::Migration m = report::from_qemu(
      o.round.migration, "mdevmig qemu-migrate: " + o.src_uuid + " to " + o.dst_uuid);
  m.facts.insert(
      m.facts.begin(),
      {{"source", o.src_uuid + " (" + o.src_type + ")"},
       {"destination",
        o.dst_uuid + " (" + o.dst_type + ")" +
            (setup.plan.transport == qemu::Transport::kFile ? ", restored from a file" : "")},
       {"QEMU",
        opt.vm.qemu_binary + ", VFIO migration " + qemu::vfio_protocol_name(opt.vm.protocol)},
       {"result", std::string(qemu::survivor_name(o.round.survivor)) + " holds the VM; " +
                      (o.good ? "verified" : "FAILED")}});
  for (const auto& p : o.round.problems) m.facts.emplace_back("problem", p);
  write_picture(kCmd, *setup.report_file, report::render(m, *setup.report_file->picture));
}

json outcome_json(const Setup& setup, const Outcome& o) {
  const qemu::HarnessOptions& opt = setup.opt;
  json j = o.round.to_json();
  j["source"] = {{"uuid", o.src_uuid}, {"type", o.src_type}, {"mem_size", o.src_mem}};
  j["destination"] = {{"uuid", o.dst_uuid}, {"type", o.dst_type}, {"mem_size", o.dst_mem}};
  j["qemu"] = {{"binary", opt.vm.qemu_binary},
               {"protocol", qemu::vfio_protocol_name(opt.vm.protocol)}};
  j["irq"] = qemu::irq_mode_name(opt.irq);
  j["switchover_ack"] = setup.plan.switchover_ack;
  j["multifd_channels"] = setup.plan.multifd_channels;
  j["after"] = o.again ? json{{"ok", o.again->ok()},
                              {"seq", o.again->descs},
                              {"irq_delivered", o.again->irq_delivered},
                              {"mismatches", o.again->mismatches}}
                       : json(nullptr);
  j["ok"] = o.good;
  return j;
}

void print_outcome(const Setup& setup, const Outcome& o, bool verbose, const std::string& dir) {
  const qemu::HarnessOptions& opt = setup.opt;
  const qemu::MigrationPlan& plan = setup.plan;
  const auto& round = o.round;
  const auto& m = round.migration;
  std::printf(
      "source       instance %s (%s, %s of device memory), QEMU %s, %s\n", o.src_uuid.c_str(),
      o.src_type.c_str(), qemu::format_bytes(static_cast<double>(o.src_mem)).c_str(),
      opt.vm.qemu_binary.c_str(),
      opt.vm.protocol == qemu::VfioProtocol::kV1 ? "v1 migration region (x-enable-migration=on)"
                                                 : "v2 (enable-migration=on)");
  std::printf(
      "destination  instance %s (%s, %s)%s\n", o.dst_uuid.c_str(), o.dst_type.c_str(),
      qemu::format_bytes(static_cast<double>(o.dst_mem)).c_str(),
      plan.transport == qemu::Transport::kFile ? ", restored from a file into a fresh QEMU" : "");
  std::printf("workload     %" PRIu64 " BAR2 writes, %" PRIu64 " DMA descriptors, %" PRIu64
              " scratch writes, %" PRIu64 " interrupts (%s) in %.1f s while migrating\n",
              round.workload.bar2_writes, round.workload.descs, round.workload.scratch,
              round.workload.irqs, qemu::irq_mode_name(opt.irq), round.workload.seconds);
  std::printf("migration\n%s", qemu::migration_summary(m).c_str());
  if (plan.multifd_channels > 0)
    std::printf(
        "multifd      %u channels: %u connections, %s of %s on the main one; device data %s over "
        "multifd "
        "(stop-copy %s)\n",
        plan.multifd_channels, m.wire_connections,
        qemu::format_bytes(static_cast<double>(m.wire_main_bytes)).c_str(),
        qemu::format_bytes(static_cast<double>(m.wire_bytes)).c_str(),
        qemu::format_bytes(
            static_cast<double>(m.device_bytes - std::min(m.device_bytes, m.device_main_bytes)))
            .c_str(),
        qemu::format_bytes(static_cast<double>(m.device_downtime_bytes)).c_str());
  if (!m.passes.empty()) {
    std::printf(
        "pre-copy     device passes (dirty pages: what its tracker collected; p = 4 KiB pages)\n%s",
        qemu::device_pass_table(m, o.src_mem).c_str());
    if (verbose)
      std::printf("QEMU iterations (one per dirty sync)\n%s", qemu::pass_table(m).c_str());
  }
  std::printf("result       %s holds the VM", qemu::survivor_name(round.survivor));
  if (round.survivor != qemu::Survivor::kNone)
    std::printf(": %" PRIu64 " of the %" PRIu64 " accesses issued during the migration arrived",
                round.ops_landed, round.ops_pending);
  std::printf("\n");
  const auto& v = round.recovered ? round.recovery_verification : round.verification;
  if (v) std::printf("verified     %s\n", v->summary().c_str());
  if (o.again)
    std::printf("afterwards   the queue went on: SEQ %" PRIu64 " before the migration, %" PRIu64
                " after it, %" PRIu64 " after %" PRIu64 " ms more work; %s\n",
                o.seq_before, o.seq_mid, o.again->descs, setup.after, o.again->summary().c_str());
  for (const auto& p : round.problems) std::printf("PROBLEM      %s\n", p.c_str());
  if (opt.keep_dir) std::printf("work dir     %s\n", dir.c_str());
  std::printf("%s\n", o.good ? "OK" : "FAILED");
}

// --no-device: the same VM without the device, migrated; QEMU's figures and what could
// be verified.
int run_without_device(Context& ctx, const Setup& setup) {
  qemu::NoDeviceOptions opt;
  opt.vm = setup.opt.vm;
  opt.guest_fill_mb = setup.opt.guest_fill_mb;
  opt.keep_dir = setup.opt.keep_dir;
  opt.log = setup.opt.log;
  auto r = qemu::migrate_without_device(opt, setup.plan);
  if (!r) return ctx.fail(r.error());
  const qemu::RoundReport& round = *r;
  const bool good = round.verified();
  if (ctx.json()) {
    json j = round.to_json();
    j["device"] = nullptr;
    j["qemu"] = {{"binary", opt.vm.qemu_binary}, {"protocol", nullptr}};
    j["guest"] = {{"mem_mb", opt.vm.mem_mb},
                  {"fill_mb", qemu::guest_fill_range(opt.guest_fill_mb).length >> 20}};
    j["multifd_channels"] = setup.plan.multifd_channels;
    j["ok"] = good;
    ctx.print_json(json_document(kCmd, j));
    return good ? kExitOk : kExitFailed;
  }
  const qemu::FillRange fill = qemu::guest_fill_range(opt.guest_fill_mb);
  std::printf("VM           QEMU %s without a device (--no-device), %u MB of RAM, %" PRIu64
              " MiB of it filled\n",
              opt.vm.qemu_binary.c_str(), opt.vm.mem_mb, fill.length >> 20);
  std::printf("migration\n%s", qemu::migration_summary(round.migration, false).c_str());
  std::printf("result       %s holds the VM\n", qemu::survivor_name(round.survivor));
  if (round.verification) {
    const auto& v = *round.verification;
    std::printf("verified     %s: the destination runs, %" PRIu64 " filled pages compared\n",
                v.ok() ? "verified" : "MISMATCH", v.pages_sampled);
    for (const auto& m : v.mismatches) std::printf("  - %s\n", m.c_str());
  }
  for (const auto& p : round.problems) std::printf("PROBLEM      %s\n", p.c_str());
  if (opt.keep_dir) std::printf("work dir     %s\n", opt.vm.dir.c_str());
  std::printf("%s\n", good ? "OK" : "FAILED");
  return good ? kExitOk : kExitFailed;
}

}  // namespace

int run_qemu_migrate(Context& ctx) {
  const Args& a = ctx.args();
  auto setup = parse_setup(a);
  if (!setup) return ctx.fail(setup.error());
  if (setup->no_device) return run_without_device(ctx, *setup);
  qemu::HarnessOptions& opt = setup->opt;
  const qemu::MigrationPlan& plan = setup->plan;

  if (mdev::mdevmig_parents().empty())
    return ctx.fail(Error::make(ENODEV, "find mdevmig parents",
                                "none in /sys/class/mdev_bus (is mdevmig.ko loaded?)"));
  const std::string type = *a.get("type");
  auto src = instance(a, "src", type);
  if (!src) return ctx.fail(src.error());
  auto dst = instance(a, "dst", a.get("dst-type").value_or(type));
  if (!dst) return ctx.fail(dst.error());
  Outcome o;
  o.src_uuid = src->uuid(), o.dst_uuid = dst->uuid();
  o.src_mem = src->mem_size().value_or(0), o.dst_mem = dst->mem_size().value_or(0);
  o.src_type = src->type(), o.dst_type = dst->type();
  std::vector<mdev::MdevInstance> inst;
  inst.push_back(std::move(*src));
  inst.push_back(std::move(*dst));

  auto h = qemu::Harness::create(opt, std::move(inst));
  if (!h) return ctx.fail(h.error());
  opt.vm.protocol = (*h)->options().vm.protocol;
  if (plan.multifd_channels > 0 && opt.vm.protocol == qemu::VfioProtocol::kV1)
    return ctx.fail(Error::make(
        ENOTSUP, "migration plan",
        "--multifd: multifd device-state transfer needs QEMU >= 10.0 (VFIO migration v2); " +
            opt.vm.qemu_binary + " speaks VFIO migration v1"));
  auto boot = (*h)->boot(0);
  if (!boot) return ctx.fail(boot.error());
  if (!boot->ok()) {
    std::fprintf(stderr, "mdevmig %s: the freshly started VM does not verify:\n%s\n", kCmd,
                 boot->summary().c_str());
    return kExitFailed;
  }
  if (auto r = (*h)->run_workload(std::chrono::milliseconds(setup->warmup)); !r)
    return ctx.fail(r.error());
  o.seq_before = (*h)->driver().expected().descs;
  auto round = (*h)->migrate(1, plan);
  if (!round) return ctx.fail(round.error());
  o.round = std::move(*round);

  // The VM goes on where it landed: more workload, verified again.
  o.seq_mid = (*h)->driver().expected().descs;
  if ((*h)->has_vm()) {
    if (auto r = (*h)->run_workload(std::chrono::milliseconds(setup->after)); !r)
      return ctx.fail(r.error());
    auto v = (*h)->verify();
    if (!v) return ctx.fail(v.error());
    o.again = std::move(*v);
  }
  o.good = o.round.verified() && (!o.again || o.again->ok());
  if (setup->report_file) write_qemu_picture(*setup, o);
  if (ctx.json()) {
    ctx.print_json(json_document(kCmd, outcome_json(*setup, o)));
    return o.good ? kExitOk : kExitFailed;
  }
  print_outcome(*setup, o, a.has("verbose"), (*h)->dir());
  return o.good ? kExitOk : kExitFailed;
}

}  // namespace mdevmig::cli
