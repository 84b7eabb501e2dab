#include "tools/qemu/nodevice.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;
constexpr uint64_t kPage = 4096;

// Compares `count` pages spread over `fill` (the first and the last among them) with the
// fill byte, on the VM of `qt`.
Result<Verification> check_fill(QtestClient& qt, const FillRange& fill, uint32_t count) {
  Verification v;
  const uint64_t pages = fill.length / kPage;
  const uint64_t n = std::min<uint64_t>(count, pages);
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t addr = fill.start + (n == 1 ? 0 : i * (pages - 1) / (n - 1)) * kPage;
    const std::vector<uint8_t> data = MDEVMIG_TRY(qt.b64read(addr, kPage));
    ++v.pages_sampled;
    const auto bad =
        std::find_if(data.begin(), data.end(), [](uint8_t b) { return b != kGuestFillByte; });
    if (data.size() != kPage || bad != data.end()) {
      char buf[160];
      std::snprintf(buf, sizeof buf,
                    "guest RAM page at 0x%" PRIx64 ": byte %zu is 0x%02x, want 0x%02x", addr,
                    static_cast<std::size_t>(bad - data.begin()), bad != data.end() ? *bad : 0u,
                    kGuestFillByte);
      v.mismatches.emplace_back(buf);
    }
  }
  return v;
}

// Removes the work directory at the end, when it made it and it is not to be kept.
struct DirGuard {
  const std::string& dir;
  bool remove;
  ~DirGuard() {
    if (remove) remove_vm_dir(dir);
  }
};

}  // namespace

Result<RoundReport> migrate_without_device(NoDeviceOptions& opt, const MigrationPlan& plan) {
  if (plan.transport != Transport::kUnix)
    return Error::make(EINVAL, "migration plan",
                       "a VM without a device migrates live over a unix socket only");
  if (plan.fault != FaultKind::kNone)
    return Error::make(EINVAL, "migration plan", "faults need a device");
  auto say = [&](const std::string& s) {
    if (opt.log) opt.log(s);
  };
  const bool own_dir = MDEVMIG_TRY(prepare_vm_dir(opt.vm.dir, opt.vm.bios, "mdevmig-qemu"));
  DirGuard guard{opt.vm.dir, own_dir && !opt.keep_dir};
  const auto t0 = Clock::now();
  RoundReport rep;
  rep.transport = plan.transport;

  say("starting QEMU vm1 without a device");
  Vm src = MDEVMIG_TRY(Vm::start(opt.vm, "vm1", std::string()));
  QtestClient* qt = MDEVMIG_TRY(src.qtest());
  const FillRange fill = guest_fill_range(opt.guest_fill_mb);
  if (fill.length > 0) {
    MDEVMIG_TRY(qt->memset(fill.start, fill.length, kGuestFillByte));
    say("guest RAM filled: " + std::to_string(fill.length >> 20) + " MiB from " +
        std::to_string(fill.start >> 20) + " MiB");
    // The check must see the fill where it was made before it is trusted on the destination.
    const Verification before = MDEVMIG_TRY(check_fill(*qt, fill, opt.sample_pages));
    if (!before.ok())
      return Error::make(EIO, "fill the guest RAM of vm1", before.mismatches.front());
  }
  say("starting QEMU vm2 without a device (-incoming defer)");
  Vm dst = MDEVMIG_TRY(Vm::start(opt.vm, "vm2", std::string(), std::string("defer")));
  rep.migration = MDEVMIG_TRY(
      run_migration(src, &dst, nullptr, 0, plan, opt.vm.dir, SwitchoverHooks{}, opt.log));

  if (rep.migration.status == "completed") {
    rep.survivor = Survivor::kDestination;
    if (auto w = dst.wait_run_state("running", 30s); !w)
      rep.problems.push_back(w.error().message());
    auto s = src.run_state();
    if (!s || *s != "postmigrate")
      rep.problems.push_back("source is " + (s ? *s : s.error().message()) +
                             " after a completed migration, want postmigrate");
    QtestClient* dqt = MDEVMIG_TRY(dst.qtest());
    rep.verification = MDEVMIG_TRY(check_fill(*dqt, fill, opt.sample_pages));
  } else {
    rep.survivor = Survivor::kSource;
    rep.problems.push_back("migration " + rep.migration.status +
                           (rep.migration.error.empty() ? "" : ": " + rep.migration.error));
  }
  rep.src_end = src.quit();
  rep.dst_end = dst.quit();
  rep.round_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return rep;
}

}  // namespace mdevmig::qemu
