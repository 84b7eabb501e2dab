// mdevmig migrate: live migration of a device's state, with pre-copy.
//   --from A --to B               two devices on this host, in one process
//   --from A --to HOST:PORT       the source side, to a destination process
//   --listen [ADDR:]PORT --to B   the destination side
// Between processes, --tls DIR runs the socket over TLS 1.3 with mutual certificate
// authentication, encrypted by kernel TLS (migration/io/tls.h).
#include <linux/mdevmig.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <thread>

#include <xxhash.h>
#include <nlohmann/json.hpp>

#include "migration/engine/channel.h"
#include "migration/engine/session.h"
#include "migration/io/cancel.h"
#include "migration/io/net.h"
#include "migration/io/tls.h"
#include "migration/vfio/uapi.h"
#include "tools/cli/args.h"
#include "tools/cli/command.h"
#include "tools/cli/context.h"
#include "tools/cli/device_arg.h"
#include "tools/cli/json_out.h"
#include "tools/cli/migrate.h"
#include "tools/cli/migrate_workload.h"
#include "tools/cli/report_arg.h"
#include "tools/report/convert.h"
#include "tools/report/xml.h"

namespace mdevmig::cli {
namespace {

constexpr const char* kCmd = "migrate";

// Channels and guest memory refer to the device and container: keep them in place.
struct Side {
  std::unique_ptr<OpenedDevice> dev;
  schema::DeviceIdentity id;
  std::unique_ptr<engine::Channel> ch;
  std::optional<engine::GuestMemory> guest;
};

Result<Side> open_side(std::string_view text, engine::ChannelPreference pref, uint64_t guest_bytes,
                       uint64_t guest_iova, bool source) {
  Side s;
  const DeviceSpec spec = MDEVMIG_TRY(parse_device_spec(text));
  s.dev = std::make_unique<OpenedDevice>(MDEVMIG_TRY(OpenedDevice::open(spec)));
  s.id = MDEVMIG_TRY(s.dev->identity());
  s.ch = MDEVMIG_TRY(engine::open_channel(s.dev->dev(), pref, true));
  if (guest_bytes > 0) {
    if (s.dev->container() == nullptr) {
      return Error::make(EINVAL, "usage",
                         "--guest-mem needs devices opened by UUID (" + spec.text +
                             " is an fd: this process has no container for it)");
    }
    s.guest.emplace(MDEVMIG_TRY(
        engine::GuestMemory::create(*s.dev->container(), guest_iova, guest_bytes, source)));
  }
  return s;
}

// XXH3 of a region read through the device fd (works in every access mode).
Result<uint64_t> region_hash(const vfio::Device& dev, uint32_t index, uint64_t size) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  std::vector<std::byte> buf(1u << 20);
  Result<void> r = ok();
  for (uint64_t off = 0; off < size && r.ok(); off += buf.size()) {
    const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(buf.size(), size - off));
    r = dev.read(index, off, std::span(buf.data(), n));
    if (r.ok()) XXH3_64bits_update(st, buf.data(), n);
  }
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  MDEVMIG_TRY(r);
  return h;
}

// Device memory, the state-holding registers and guest memory of two devices compared.
Result<std::string> verify_same(const Side& a, const Side& b) {
  const auto& da = a.dev->dev();
  const auto& db = b.dev->dev();
  for (const Side* side : {&a, &b}) {
    if (auto ours = check_mdevmig_layout(side->id, "--verify"); !ours.ok()) {
      return "skipped (" + ours.error().context + ")";
    }
  }
  const uint64_t mem = a.id.compat->mem_size;
  const uint64_t ha = MDEVMIG_TRY(region_hash(da, VFIO_PCI_BAR2_REGION_INDEX, mem));
  const uint64_t hb = MDEVMIG_TRY(region_hash(db, VFIO_PCI_BAR2_REGION_INDEX, mem));
  if (ha != hb) return Error::make(EIO, "verify", "device memory differs after migration");
  std::vector<uint32_t> regs = {MDEVMIG_REG_CTRL,      MDEVMIG_REG_INT_STATUS,
                                MDEVMIG_REG_INT_MASK,  MDEVMIG_REG_RING_BASE_LO,
                                MDEVMIG_REG_RING_SIZE, MDEVMIG_REG_RING_HEAD,
                                MDEVMIG_REG_RING_TAIL, MDEVMIG_REG_SEQ};
  for (uint32_t i = 0; i < MDEVMIG_NR_SCRATCH; ++i) regs.push_back(MDEVMIG_REG_SCRATCH(i));
  for (uint32_t r : regs) {
    const uint32_t va = MDEVMIG_TRY(da.read_as<uint32_t>(VFIO_PCI_BAR0_REGION_INDEX, r));
    const uint32_t vb = MDEVMIG_TRY(db.read_as<uint32_t>(VFIO_PCI_BAR0_REGION_INDEX, r));
    if (va != vb) {
      char buf[96];
      std::snprintf(buf, sizeof(buf), "register 0x%03x: source 0x%x, destination 0x%x", r, va, vb);
      return Error::make(EIO, "verify", buf);
    }
  }
  if (a.guest && b.guest && std::memcmp(a.guest->data(), b.guest->data(), a.guest->size()) != 0) {
    return Error::make(EIO, "verify", "guest memory differs after migration");
  }
  char out[64];
  std::snprintf(out, sizeof(out), "ok (device memory xxh3 %016" PRIx64 ")", ha);
  return std::string(out);
}

// One migration: the options of both engine sides, the progress line, the TLS
// handshake and --report, shared by the three roles.
class Migration {
 public:
  Migration(const Context& ctx, MigratePlan plan);
  Migration(const Migration&) = delete;
  Migration& operator=(const Migration&) = delete;

  /// Runs the role the plan names; returns the exit code.
  int run();

 private:
  int destination();
  int source();
  int same_host();
  // Opens the device on one side.
  [[nodiscard]] Result<Side> open(const std::string& text, bool source) const {
    return open_side(text, plan_.channel, plan_.guest_bytes, plan_.guest_iova, source);
  }
  // TLS over a connected socket, when --tls was given.
  [[nodiscard]] Result<void> secure(int fd, const std::string& peer);
  // --report: the picture of a completed migration, drawn from the report printed (a
  // failed migration has none). Written once the result is known; it never changes it.
  void picture(const engine::MigrationReport& r, const std::string& title,
               std::vector<std::pair<std::string, std::string>> facts) const;
  // The report of one side of a migration between processes.
  void print_between(const engine::MigrationReport& r, const char* role) const;
  // Ends the progress line and stops the workload.
  void settle();

  const Context& ctx_;
  MigratePlan plan_;
  engine::SourceOptions sopt_;
  engine::DestinationOptions dopt_;
  Progress progress_{"migrate"};
  std::optional<Side> src_;
  std::unique_ptr<Workload> workload_;  // writes to src_: stopped (destroyed) before it
  std::optional<io::TlsInfo> tls_info_;
  double tls_setup_s_ = 0;  // handshake and handover to the kernel
};

Migration::Migration(const Context& ctx, MigratePlan plan) : ctx_(ctx), plan_(std::move(plan)) {
  sopt_.policy.downtime_target_s = static_cast<double>(plan_.downtime_ms) / 1000.0;
  sopt_.policy.max_iterations = static_cast<uint32_t>(plan_.max_iterations);
  sopt_.policy.max_precopy_s = plan_.max_precopy_s;
  sopt_.precopy = !ctx.args().has("no-precopy");
  sopt_.skip_unchanged_guest = !ctx.args().has("no-skip-unchanged");
  sopt_.peer_timeout = std::chrono::seconds(plan_.timeout_s);
  sopt_.cancel = ctx.cancel();
  dopt_.peer_timeout = std::chrono::seconds(plan_.timeout_s);
  dopt_.cancel = ctx.cancel();
  sopt_.on_iteration = [this,
                        verbose = ctx.args().has("verbose")](const engine::IterationStats& s) {
    const std::string line = iteration_line(s);
    if (verbose) {
      std::fprintf(stderr, "mdevmig migrate: %s\n", line.c_str());
    } else {
      progress_.update(0, 0, line);
    }
  };
}

Result<void> Migration::secure(int fd, const std::string& peer) {
  if (!plan_.creds) return ok();
  io::TlsOptions o;
  o.peer = peer;
  o.hostname =
      plan_.tls_hostname ? *plan_.tls_hostname : (plan_.where ? plan_.where->host : std::string());
  o.timeout = std::chrono::seconds(std::min<uint64_t>(plan_.timeout_s, 60));
  o.cancel = ctx_.cancel();
  const auto t0 = std::chrono::steady_clock::now();
  tls_info_ = MDEVMIG_TRY(io::secure_socket(fd, *plan_.creds, o));
  tls_setup_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return ok();
}

void Migration::picture(const engine::MigrationReport& r, const std::string& title,
                        std::vector<std::pair<std::string, std::string>> facts) const {
  if (!plan_.report_file) return;
  report::Migration m = report::from_engine(r, title);
  m.facts.insert(m.facts.begin(), facts.begin(), facts.end());
  if (tls_info_)
    m.facts.emplace_back("transport", tls_info_->version + " " + tls_info_->cipher + ", peer " +
                                          tls_info_->peer_subject);
  write_picture(kCmd, *plan_.report_file, report::render(m, *plan_.report_file->picture));
}

void Migration::print_between(const engine::MigrationReport& r, const char* role) const {
  if (ctx_.json()) {
    nlohmann::json j = report_json(r);
    j["tls"] = tls_json(tls_info_, tls_setup_s_);
    ctx_.print_json(json_document(kCmd, j));
  } else {
    print_report(r, role);
    print_tls(tls_info_);
  }
}

void Migration::settle() {
  progress_.finish();
  if (workload_) workload_->stop();
}

int Migration::run() {
  if (plan_.listen) return destination();
  auto src = open(*plan_.from, true);
  if (!src.ok()) return ctx_.fail(src.error());
  src_.emplace(std::move(*src));
  if (plan_.workload.bar2 || plan_.workload.dma) {
    auto w = Workload::start(src_->dev->dev(), src_->id, src_->guest ? &*src_->guest : nullptr,
                             plan_.workload);
    if (!w.ok()) return ctx_.fail(w.error());
    workload_ = std::move(*w);
    sopt_.before_stop = [this] { workload_->pause(); };
    sopt_.after_recover = [this] { workload_->resume(); };
  }
  return plan_.to_spec ? same_host() : source();
}

// ---- destination process ------------------------------------------------------------
int Migration::destination() {
  const io::HostPort& where = *plan_.where;
  auto dst = open(*plan_.to, false);
  if (!dst.ok()) return ctx_.fail(dst.error());
  auto lfd = io::listen_tcp(where);
  if (!lfd.ok()) return ctx_.fail(lfd.error());
  auto port = io::local_port(lfd->get());
  if (!port.ok()) return ctx_.fail(port.error());
  std::fprintf(stderr, "mdevmig migrate: listening on %s:%u\n", where.host.c_str(), *port);
  std::fflush(stderr);
  auto conn = io::accept_one(lfd->get(), std::chrono::seconds(plan_.timeout_s), ctx_.cancel());
  if (!conn.ok()) return ctx_.fail(conn.error());
  if (auto t = secure(conn->get(), io::peer_name(conn->get())); !t.ok())
    return ctx_.fail(t.error());
  auto rep = engine::run_destination(*dst->ch, dst->id, dst->guest ? &*dst->guest : nullptr,
                                     conn->get(), dopt_);
  if (!rep.ok()) return ctx_.fail(rep.error());
  picture(*rep, "mdevmig migrate: destination " + *plan_.to,
          {{"listening on", *plan_.listen}, {"destination", *plan_.to}});
  print_between(*rep, "destination");
  return kExitOk;
}

// ---- source process -----------------------------------------------------------------
int Migration::source() {
  Side& src = *src_;
  const io::HostPort& where = *plan_.where;
  auto conn = io::connect_tcp(where);
  if (!conn.ok()) {
    settle();
    return ctx_.fail(conn.error());
  }
  if (auto t = secure(conn->get(), where.host + ":" + std::to_string(where.port)); !t.ok()) {
    settle();
    return ctx_.fail(t.error().add_note("the source device was not stopped"));
  }
  auto rep =
      engine::run_source(*src.ch, src.id, src.guest ? &*src.guest : nullptr, conn->get(), sopt_);
  settle();
  if (!rep.ok()) return ctx_.fail(rep.error());
  picture(*rep, "mdevmig migrate: " + *plan_.from + " to " + *plan_.to,
          {{"source", *plan_.from}, {"destination", *plan_.to}});
  print_between(*rep, "source");
  return kExitOk;
}

// ---- same host: the destination in a thread, joined by a socketpair --------------------
int Migration::same_host() {
  Side& src = *src_;
  auto dst = open(*plan_.to, false);
  if (!dst.ok()) return ctx_.fail(dst.error());
  auto pair = io::stream_pair();
  if (!pair.ok()) return ctx_.fail(pair.error());
  std::optional<Result<engine::MigrationReport>> dst_rep;
  std::thread dst_thread([&] {
    dst_rep.emplace(engine::run_destination(*dst->ch, dst->id, dst->guest ? &*dst->guest : nullptr,
                                            pair->second.get(), dopt_));
    // Unblocks the source if the destination failed before reading everything.
    ::shutdown(pair->second.get(), SHUT_RDWR);
  });
  auto rep = engine::run_source(*src.ch, src.id, src.guest ? &*src.guest : nullptr,
                                pair->first.get(), sopt_);
  ::shutdown(pair->first.get(), SHUT_RDWR);
  dst_thread.join();
  settle();
  // Interrupted, both sides stop; the source's error says where its device is.
  if (!rep.ok() && rep.error().errnum == EINTR) return ctx_.fail(rep.error());
  if (!dst_rep->ok()) return ctx_.fail(dst_rep->error());
  if (!rep.ok()) return ctx_.fail(rep.error());
  picture(*rep, "mdevmig migrate: " + *plan_.from + " to " + *plan_.to + " (same host)",
          {{"source", *plan_.from},
           {"destination", *plan_.to},
           {"destination's downtime",
            report::time_text((*dst_rep)->downtime_s) + " (from the switchover to running)"}});

  std::string verified = "not requested";
  if (ctx_.args().has("verify")) {
    if (plan_.workload.dma) {
      verified = "skipped (the DMA workload's in-flight work continues on the destination)";
    } else {
      auto v = verify_same(src, *dst);
      if (!v.ok()) {
        ctx_.fail(v.error());
        return kExitFailed;  // the migration ran; what arrived differs
      }
      verified = *v;
    }
  }
  if (ctx_.json()) {
    nlohmann::json j = report_json(*rep);
    j["destination_downtime_s"] = (*dst_rep)->downtime_s;
    j["verify"] = verified;
    if (workload_)
      j["workload"] = {{"bar2_pages_written", workload_->pages_written()},
                       {"dma_descriptors", workload_->descriptors()}};
    ctx_.print_json(json_document(kCmd, j));
  } else {
    print_report(*rep, "same host");
    if (workload_) {
      std::printf("  workload: %" PRIu64 " BAR2 page writes, %" PRIu64 " DMA descriptors\n",
                  workload_->pages_written(), workload_->descriptors());
    }
    std::printf("  verify: %s\n", verified.c_str());
  }
  return kExitOk;
}

}  // namespace

int run_migrate(Context& ctx) {
  // A peer that vanishes is an error to handle, not a signal that kills the source
  // before it recovers its device (the data path uses MSG_NOSIGNAL; this covers the rest).
  ::signal(SIGPIPE, SIG_IGN);
  auto plan = parse_migrate_plan(ctx.args());
  if (!plan.ok()) return ctx.fail(plan.error());
  Migration migration(ctx, std::move(*plan));
  return migration.run();
}

}  // namespace mdevmig::cli
