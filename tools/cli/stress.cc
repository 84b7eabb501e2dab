// mdevmig stress: repeated migrations of a VM with a live workload between two
// instances, with random switchover moments and injected faults (cancel, killed
// destination or source, corrupted or truncated streams), each round's survivor
// verified exactly and checked for leaks; a summary and a JSON report. The VM is a
// QEMU (--mode qemu, tools/qemu/stress.h) or a process of ours migrated by the
// project's engine (--mode local, stress_local.h).
#include <array>
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
#include "tools/cli/stress_local.h"
#include "tools/qemu/stress.h"
#include "tools/report/convert.h"
#include "tools/stress/faults.h"

namespace mdevmig::cli {
namespace {

constexpr const char* kCmd = "stress";
constexpr std::array<std::string_view, 2> kModes{"qemu", "local"};

Result<std::vector<stress::FaultKind>> parse_faults(const std::string& text) {
  auto faults = stress::parse_fault_list(text);
  if (!faults.ok())
    return usage_error("--faults", "wants a comma-separated list of " +
                                       stress::fault_list_text(stress::injectable_faults(), ", ") +
                                       " (or none), got '" + text + "'");
  return faults;
}

// Writes --report FILE if asked: a picture (FILE.html, FILE.svg; its failure does not
// change the exit status) or the JSON report (false, after saying why, if it could not).
bool write_report(const nlohmann::json& j, const Args& a, const qemu::StressReport& r,
                  const std::string& mode) {
  const auto path = a.get("report");
  if (!path) return true;
  if (const auto picture = report::format_of(*path)) {
    const report::Stress s =
        report::from_stress(r, "mdevmig stress --mode " + mode + " --seed " + *a.get("seed"),
                            mode == "local" ? report::Driver::kEngine : report::Driver::kQemu);
    write_picture(kCmd, ReportFile{*path, picture}, report::render(s, *picture));
    return true;
  }
  // Written next to FILE and renamed over it, as the pictures are: a reader never sees
  // half a report.
  if (auto w = report::write_file(*path, json_text(json_document(kCmd, j)) + "\n"); !w.ok())
    return report_error(kCmd, w.error()), false;
  return true;
}

// The two instances: --a/--b adopted, else created (removed again at the end).
Result<std::vector<mdev::MdevInstance>> instances(const Args& a) {
  if (mdev::mdevmig_parents().empty())
    return Error::make(ENODEV, "find mdevmig parents",
                       "none in /sys/class/mdev_bus (is mdevmig.ko loaded?)");
  std::vector<mdev::MdevInstance> inst;
  for (const char* name : {"a", "b"}) {
    inst.push_back(MDEVMIG_TRY(
        a.get(name) ? mdev::MdevInstance::adopt(canonical_uuid(*a.get(name)))
                    : mdev::MdevInstance::create(*a.get("type"), a.get("parent").value_or(""))));
  }
  return inst;
}

}  // namespace

Args stress_args() {
  Args a(
      "stress [options]",
      "Migrates a VM with an mdevmig device back and forth between two instances, N rounds, with a "
      "live\n"
      "workload, random switchover moments and injected faults. After every round the side that "
      "must\n"
      "hold the VM is verified exactly (a source killed mid-migration is recovered from a "
      "checkpoint and\n"
      "verified), and instances, processes, file descriptors and the kernel log are checked for\n"
      "leftovers. Exit status 0 only if every round was verified.\n"
      "--mode qemu: the VM is a QEMU driven through qtest, migrated by QEMU (live or through a "
      "file).\n"
      "--mode local: the VM is a process that owns the instance, guest memory and a BAR2/DMA "
      "workload,\n"
      "migrated by this tool's engine (as `mdevmig migrate`) to a destination process through a "
      "relay\n"
      "that can corrupt or cut the stream; it is checked against a model of everything it wrote.");
  a.option("mode", choice_metavar(kModes), "what migrates the device", std::string(kModes[0]));
  a.option("rounds", "N", "migrations", "20");
  a.option("fault-rate", "F", "fraction of rounds with an injected fault", "0.5");
  a.option("faults", "LIST",
           "comma-separated: " + stress::fault_list_text(stress::injectable_faults()),
           stress::fault_list_text(stress::default_faults()));
  a.option("file-rate", "F",
           "qemu: fraction of rounds saved to a file and restored instead of live", "0.25");
  a.option("a", "UUID", "first instance (default: create one)");
  a.option("b", "UUID", "second instance (default: create one)");
  a.option("type", "TYPE", "type of the instances created", "eighth");
  a.option("parent", "NAME", "parent to create them on (default: the first with room)");
  a.option("qemu-binary", "PATH", "qemu: QEMU to run", "qemu-system-x86_64");
  declare_protocol(a, "qemu: VFIO migration of that QEMU (auto: by its version)");
  declare_irq(a, "qemu: how the device interrupts the guest");
  a.option("bandwidth", "SIZE",
           "qemu: max-bandwidth during pre-copy (each round draws 50-100% of it)", "32M");
  a.option("downtime", "MS",
           "qemu: downtime-limit from the switchover on; local: the downtime target is 0..MS "
           "(random per round, 0 in a quarter of the rounds: iterate to the cap)",
           "300");
  a.option("max-passes", "N",
           "qemu: switchover after 0..N dirty passes; local: after at most 1..N+1 "
           "pre-copy iterations (random per round)",
           "3");
  a.option("max-delay", "MS", "qemu: ... and 0..MS later (random per round)", "400");
  declare_channel(a, "local: migration interface of the engine");
  a.option("writes", "N", "BAR2 writes per second by the guest", "100");
  a.option("dma", "N", "DMA descriptors per second by the guest", "20");
  a.option("checkpoint-every", "N", "refresh the recovery checkpoint every N rounds", "5");
  a.option("seed", "N", "seed of the rounds and the workload", "1");
  a.option("report", "FILE", report_help(true));
  a.flag("json", "print the JSON report instead of the summary");
  a.flag("verbose", "log each step on stderr");
  return a;
}

namespace {

// The options of both modes, every value checked (before an instance is adopted or
// created); which of them a mode uses is its business.
struct Setup {
  LocalStressOptions local;
  qemu::HarnessOptions harness;
  qemu::StressOptions qemu;
};

Result<Setup> parse_setup(const Args& a) {
  auto proto = MDEVMIG_TRY(get_protocol(a));
  auto irq = MDEVMIG_TRY(get_irq(a));
  auto pref = MDEVMIG_TRY(get_channel(a));
  auto faults = MDEVMIG_TRY(parse_faults(*a.get("faults")));
  auto rounds = a.get_uint("rounds", 1, 1'000'000);
  auto bw = a.get_size("bandwidth", 1);
  auto downtime = a.get_uint("downtime", 0, kMaxDowntimeMs);
  auto passes = a.get_uint("max-passes", 0, 1000);
  auto delay = a.get_uint("max-delay", 0, kMaxDelayMs);
  auto every = a.get_uint("checkpoint-every", 1, UINT32_MAX);
  auto seed = a.get_uint("seed");
  for (const Result<uint64_t>* r : {&rounds, &bw, &downtime, &passes, &delay, &every, &seed})
    if (!*r) return r->error();
  auto fault_rate = a.get_double("fault-rate", 0, 1);
  auto file_rate = a.get_double("file-rate", 0, 1);
  auto writes = a.get_double("writes", 0, kMaxGuestOpsPerS);
  auto dma = a.get_double("dma", 0, kMaxGuestOpsPerS);
  for (const Result<double>* r : {&fault_rate, &file_rate, &writes, &dma})
    if (!*r) return r->error();
  const bool verbose = a.has("verbose");

  Setup setup;
  LocalStressOptions& lo = setup.local;
  lo.rounds = static_cast<uint32_t>(*rounds);
  lo.fault_rate = *fault_rate;
  lo.faults = faults;
  lo.seed = *seed;
  lo.checkpoint_every = static_cast<uint32_t>(*every);
  lo.max_iterations = static_cast<uint32_t>(*passes) + 1;
  lo.downtime_ms = static_cast<uint32_t>(*downtime);
  lo.bar2_writes_per_s = *writes;
  lo.descs_per_s = *dma;
  lo.channel = pref;
  if (verbose)
    lo.log = [](const std::string& s) { std::fprintf(stderr, "  [stress] %s\n", s.c_str()); };

  qemu::HarnessOptions& opt = setup.harness;
  opt.vm.qemu_binary = *a.get("qemu-binary");
  opt.vm.protocol = proto;
  opt.irq = irq;
  opt.rates.bar2_writes_per_s = *writes;
  opt.rates.descs_per_s = *dma;
  opt.rates.pressure_fill_bytes = 1 << 20;
  opt.seed = *seed;
  opt.sample_pages = 8;
  if (verbose)
    opt.log = [](const std::string& s) { std::fprintf(stderr, "  [stress] %s\n", s.c_str()); };
  qemu::StressOptions& so = setup.qemu;
  so.rounds = static_cast<uint32_t>(*rounds);
  so.fault_rate = *fault_rate;
  so.faults = faults;
  so.file_rate = *file_rate;
  so.seed = *seed;
  so.checkpoint_every = static_cast<uint32_t>(*every);
  so.max_bandwidth = *bw;
  so.downtime_limit_ms = static_cast<uint32_t>(*downtime);
  so.max_min_passes = static_cast<uint32_t>(*passes);
  so.max_switchover_delay = std::chrono::milliseconds(*delay);
  return setup;
}

// Prints the report (the summary, or JSON with --json) and returns the exit status.
int finish(const Context& ctx, const nlohmann::json& j, const qemu::StressReport& report,
           bool good) {
  if (ctx.json())
    ctx.print_json(json_document(kCmd, j));
  else
    std::printf("%s", report.summary().c_str());
  return good ? kExitOk : kExitFailed;
}

int run_local(const Context& ctx, const LocalStressOptions& lo) {
  auto inst = instances(ctx.args());
  if (!inst) return ctx.fail(inst.error());
  qemu::StressReport report = run_local_stress(std::move(*inst), lo);
  const nlohmann::json j = local_report_json(report, lo);
  if (!write_report(j, ctx.args(), report, "local")) return kExitDevice;
  return finish(ctx, j, report,
                report.unverified == 0 && report.aborted.empty() && !report.rounds.empty());
}

int run_qemu(const Context& ctx, const Setup& setup) {
  auto inst = instances(ctx.args());
  if (!inst) return ctx.fail(inst.error());
  auto h = qemu::Harness::create(setup.harness, std::move(*inst));
  if (!h) return ctx.fail(h.error());
  auto boot = (*h)->boot(0);
  if (!boot) return ctx.fail(boot.error());
  if (!boot->ok()) {
    std::fprintf(stderr, "mdevmig %s: the freshly started VM does not verify:\n%s\n", kCmd,
                 boot->summary().c_str());
    return kExitFailed;
  }
  qemu::StressReport report = qemu::run_stress(**h, setup.qemu, setup.harness.log);
  const nlohmann::json j = qemu::report_json(report, setup.qemu);
  if (!write_report(j, ctx.args(), report, "qemu")) return kExitDevice;
  return finish(ctx, j, report, report.unverified == 0 && report.aborted.empty());
}

}  // namespace

int run_stress(Context& ctx) {
  const Args& a = ctx.args();
  // Every value is checked here, before an instance is adopted or created.
  auto mode = a.get_choice("mode", kModes);
  if (!mode) return ctx.fail(mode.error());
  if (auto e = check_instance_pair(a, "a", "b")) return ctx.fail(*e);
  if (auto r = report_arg(a, true); !r) return ctx.fail(r.error());
  auto setup = parse_setup(a);
  if (!setup) return ctx.fail(setup.error());
  return kModes[*mode] == "local" ? run_local(ctx, setup->local) : run_qemu(ctx, *setup);
}

}  // namespace mdevmig::cli
