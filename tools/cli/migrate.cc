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

#include <nlohmann/json.hpp>
#include <xxhash.h>

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
constexpr uint64_t kGuestPage = 4096;
constexpr uint64_t kMaxGuestMem = 1ull << 40;

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
      return Error::make(EINVAL, "usage", "--guest-mem needs devices opened by UUID (" + spec.text +
                                              " is an fd: this process has no container for it)");
    }
    s.guest.emplace(MDEVMIG_TRY(engine::GuestMemory::create(*s.dev->container(), guest_iova, guest_bytes, source)));
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
  std::vector<uint32_t> regs = {MDEVMIG_REG_CTRL,      MDEVMIG_REG_INT_STATUS, MDEVMIG_REG_INT_MASK,
                                MDEVMIG_REG_RING_BASE_LO, MDEVMIG_REG_RING_SIZE, MDEVMIG_REG_RING_HEAD,
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

nlohmann::json tls_json(const std::optional<io::TlsInfo>& tls, double setup_s) {
  if (!tls) return nullptr;
  return {{"version", tls->version}, {"cipher", tls->cipher}, {"peer", tls->peer_subject}, {"kernel", true},
          {"setup_s", setup_s}};
}

nlohmann::json report_json(const engine::MigrationReport& r) {
  nlohmann::json its = nlohmann::json::array();
  for (const auto& s : r.log) {
    its.push_back({{"iteration", s.iteration},
                   {"device_bytes", s.device_bytes},
                   {"guest_pages", s.guest_pages},
                   {"pending_bytes", s.pending_bytes},
                   {"seconds", s.seconds},
                   {"bandwidth_bps", s.bandwidth_bps},
                   {"dirty_rate_bps", s.dirty_rate_bps},
                   {"estimated_downtime_s", s.est_downtime_s >= 0 ? nlohmann::json(s.est_downtime_s) : nlohmann::json()},
                   {"verdict", s.verdict}});
  }
  return {{"channel", schema::channel_name(r.channel)},
          {"iterations", r.iterations},
          {"switchover_reason", r.switchover_reason},
          {"total_s", r.total_s},
          {"precopy_s", r.precopy_s},
          {"downtime_s", r.downtime_s},
          {"switchover_fixed_s", r.switchover_fixed_s},
          {"estimated_downtime_s", r.estimated_downtime_s >= 0 ? nlohmann::json(r.estimated_downtime_s) : nlohmann::json()},
          {"downtime_target_s", r.downtime_target_s > 0 ? nlohmann::json(r.downtime_target_s) : nlohmann::json()},
          {"decision_to_stop_s", r.decision_to_stop_s},
          {"stopcopy_send_s", r.stopcopy_send_s},
          {"bytes",
           {{"precopy_device", r.precopy_device_bytes},
            {"precopy_guest", r.precopy_guest_bytes},
            {"stopcopy_device", r.stopcopy_device_bytes},
            {"stopcopy_guest", r.stopcopy_guest_bytes},
            {"stream", r.stream_bytes},
            {"wire", r.wire_bytes}}},
          {"stream_xxh3", hash_text(r.stream_xxh3)},
          {"log", its}};
}

void print_report(const engine::MigrationReport& r, const char* role) {
  std::printf("migration complete (%s, %s): %u iterations (%s)\n", role, schema::channel_name(r.channel),
              r.iterations, r.switchover_reason.c_str());
  std::printf("  total %.3f s, pre-copy %.3f s, downtime %.1f ms", r.total_s, r.precopy_s, r.downtime_s * 1000);
  if (r.estimated_downtime_s >= 0) {
    std::printf(" (estimated %.1f ms, of which %.1f ms fixed)", r.estimated_downtime_s * 1000, r.switchover_fixed_s * 1000);
  }
  std::printf("\n");
  std::printf("  pre-copy:  device %s, guest %s\n", human_bytes(static_cast<double>(r.precopy_device_bytes)).c_str(),
              human_bytes(static_cast<double>(r.precopy_guest_bytes)).c_str());
  std::printf("  stop-copy: device %s, guest %s\n", human_bytes(static_cast<double>(r.stopcopy_device_bytes)).c_str(),
              human_bytes(static_cast<double>(r.stopcopy_guest_bytes)).c_str());
  std::printf("  device stream %s (xxh3 %016" PRIx64 "), on the wire %s\n",
              human_bytes(static_cast<double>(r.stream_bytes)).c_str(), r.stream_xxh3,
              human_bytes(static_cast<double>(r.wire_bytes)).c_str());
}

void print_tls(const std::optional<io::TlsInfo>& tls) {
  if (!tls) {
    std::printf("  transport: plain TCP (not encrypted, peer not authenticated)\n");
  } else {
    std::printf("  transport: %s %s in the kernel, peer %s\n", tls->version.c_str(), tls->cipher.c_str(),
                tls->peer_subject.c_str());
  }
}

}  // namespace

std::string iteration_line(const engine::IterationStats& s) {
  char est[48] = "no downtime estimate yet";
  if (s.est_downtime_s >= 0) std::snprintf(est, sizeof(est), "est. downtime %.1f ms", s.est_downtime_s * 1000);
  char line[320];
  std::snprintf(line, sizeof(line), "iteration %u: sent %s + %" PRIu64 " guest pages, pending %s, %.1f MiB/s, %s (%s)",
                s.iteration, human_bytes(static_cast<double>(s.device_bytes)).c_str(), s.guest_pages,
                human_bytes(static_cast<double>(s.pending_bytes)).c_str(), s.bandwidth_bps / (1 << 20), est,
                s.verdict.c_str());
  return line;
}

Args migrate_args() {
  Args args("migrate (--from DEVICE --to DEVICE|HOST:PORT | --listen [ADDR:]PORT --to DEVICE) [options]",
            "Live-migrates a device's state: pre-copy iterations while the device (and the workload)\n"
            "runs, then a short stop-and-copy. Same host: --from A --to B. Between processes or\n"
            "hosts: `--listen PORT --to B` on the destination, `--from A --to HOST:PORT` on the\n"
            "source. A failed migration leaves the source RUNNING with nothing lost.\n"
            "\n"
            "Between processes the socket is plain TCP unless --tls DIR is given on both sides:\n"
            "TLS 1.3, each side verifying the other's certificate against DIR/ca-cert.pem (the\n"
            "listener presents DIR/server-cert.pem and server-key.pem, the source\n"
            "DIR/client-cert.pem and client-key.pem, as in QEMU's tls-creds-x509 directory), then\n"
            "encrypted by the kernel (its tls module must be loaded: modprobe tls). Without\n"
            "kernel TLS the migration fails; it never falls back to plaintext. --listen binds\n"
            "127.0.0.1 unless given an address, and refuses a non-loopback address without --tls\n"
            "unless --allow-plaintext is given.");
  args.option("from", "DEVICE", "the source device (UUID, /sys/bus/mdev/devices/UUID or fd:N)");
  args.option("to", "DEVICE|HOST:PORT", "the destination device, or where a destination listens");
  args.option("listen", "[ADDR:]PORT", "be the destination: accept one source (ADDR default 127.0.0.1)");
  args.option("tls", "DIR", "TLS with the certificates in DIR (ca-cert.pem, server-*.pem / client-*.pem)");
  args.option("tls-hostname", "NAME", "source: the name the listener's certificate must carry (default: HOST of --to)");
  args.flag("allow-plaintext", "let --listen accept a source without TLS on a non-loopback address");
  args.option("channel", "auto|v2|v1", "migration interface (auto: v2 pre-copy, else v1 region, else v2)", "auto");
  args.option("downtime", "MS", "downtime target (0: iterate until a cap)", "300");
  args.option("max-iterations", "N", "switch over after N pre-copy iterations", "30");
  args.option("max-precopy", "SECONDS", "switch over after this long (0: no limit)", "0");
  args.flag("no-precopy", "stop the device at once (no pre-copy)");
  args.option("workload", "none|bar2|dma|bar2,dma", "live writer on the source while pre-copy runs", "none");
  args.option("dirty-rate", "PCT", "bar2 workload: percent of device memory written per second", "1");
  args.option("guest-mem", "SIZE", "DMA-mapped guest memory migrated too (0: none; dma needs it)", "0");
  args.option("guest-iova", "IOVA", "where guest memory is mapped (4K-aligned)", "0x40000000");
  args.option("timeout", "SECONDS", "peer silence that fails the migration", "300");
  args.flag("verify", "same host: compare device memory, registers and guest memory afterwards");
  args.flag("verbose", "one line per pre-copy iteration on stderr, also when it is not a terminal");
  args.flag("json", "print the report as JSON");
  args.option("report", "FILE", report_help(false));
  args.epilogue(kExitCodesHelp);
  return args;
}

int run_migrate(Context& ctx) {
  const Args& args = ctx.args();
  auto fail = [&](const Error& e) { return ctx.fail(e); };
  auto usage = [&](const std::string& what) { return fail(Error::make_verdict(EINVAL, "usage", what)); };
  auto usage_flag = [&](const char* flag, const std::string& what) { return fail(usage_error(flag, what)); };

  // A peer that vanishes is an error to handle, not a signal that kills the source
  // before it recovers its device (the data path uses MSG_NOSIGNAL; this covers the rest).
  ::signal(SIGPIPE, SIG_IGN);

  // Every value is checked here, before a device is opened or a socket made.
  auto pref = engine::parse_channel_preference(*args.get("channel"));
  if (!pref.ok()) return usage_flag("--channel", "wants auto, v2 or v1, got '" + *args.get("channel") + "'");
  auto downtime = args.get_uint("downtime", 0, kMaxDowntimeMs);
  auto max_it = args.get_uint("max-iterations", 0, UINT32_MAX);
  auto max_pre = args.get_double("max-precopy", 0, 86400);
  auto rate = args.get_double("dirty-rate", 0, 100);
  auto guest_bytes = args.get_size("guest-mem", 0, kMaxGuestMem);
  auto guest_iova = args.get_address("guest-iova", kGuestPage);
  auto timeout = args.get_uint("timeout", 1, 86400);
  auto workload_cfg = parse_workload(*args.get("workload"));
  for (const Error* e : {downtime.ok() ? nullptr : &downtime.error(), max_it.ok() ? nullptr : &max_it.error(),
                         max_pre.ok() ? nullptr : &max_pre.error(), rate.ok() ? nullptr : &rate.error(),
                         guest_bytes.ok() ? nullptr : &guest_bytes.error(), guest_iova.ok() ? nullptr : &guest_iova.error(),
                         timeout.ok() ? nullptr : &timeout.error(), workload_cfg.ok() ? nullptr : &workload_cfg.error()}) {
    if (e != nullptr) return fail(*e);
  }
  auto report_file = report_arg(args, false);
  if (!report_file.ok()) return fail(report_file.error());
  WorkloadConfig wcfg = *workload_cfg;
  wcfg.dirty_pct_per_s = *rate;
  uint64_t gbytes = *guest_bytes;
  if (gbytes % kGuestPage != 0) return usage_flag("--guest-mem", "wants whole 4K pages, got '" + *args.get("guest-mem") + "'");
  if (wcfg.dma && gbytes == 0) gbytes = 16u << 20;
  if (gbytes > 0 && *guest_iova > UINT64_MAX - gbytes + 1)
    return usage_flag("--guest-iova", "guest memory at '" + *args.get("guest-iova") + "' would end past the last address");

  const auto from = args.get("from");
  const auto to = args.get("to");
  const auto listen = args.get("listen");
  // DEVICE arguments, and the address a process connects to or listens on.
  std::optional<DeviceSpec> to_spec;
  std::optional<io::HostPort> where;
  auto device = [&](const char* flag, const std::string& text) -> Result<DeviceSpec> {
    auto d = parse_device_spec(text);
    if (!d.ok()) return usage_error(flag, d.error().context);
    if (gbytes > 0 && d->is_fd())
      return usage_error(flag, "--guest-mem needs devices opened by UUID (" + text +
                                   " is an fd: this process has no container for it)");
    return d;
  };
  auto address = [&](const char* flag, const std::string& text) -> Result<io::HostPort> {
    auto hp = io::parse_host_port(text, "127.0.0.1");
    if (!hp.ok()) return usage_error(flag, "wants [HOST:]PORT (PORT 0 to 65535), got '" + text + "'");
    return hp;
  };
  if (listen) {
    if (from || !to || !looks_like_device(*to)) return usage("--listen needs --to DEVICE and no --from");
    auto t = device("--to", *to);
    if (!t.ok()) return fail(t.error());
    to_spec = *t;
    auto w = address("--listen", *listen);
    if (!w.ok()) return fail(w.error());
    where = *w;
  } else {
    if (!from || !to) return usage("give --from and --to (or --listen and --to)");
    auto f = device("--from", *from);
    if (!f.ok()) return fail(f.error());
    if (looks_like_device(*to)) {
      auto t = device("--to", *to);
      if (!t.ok()) return fail(t.error());
      to_spec = *t;
      if ((!f->uuid.empty() && f->uuid == t->uuid) || (f->is_fd() && f->fd == t->fd))
        return usage("--from and --to name the same device (" + *from + ", " + *to + ")");
    } else {
      auto w = address("--to", *to);
      if (!w.ok()) return fail(w.error());
      if (w->host.empty() || w->port == 0) return usage_flag("--to", "wants HOST:PORT with a port, got '" + *to + "'");
      where = *w;
    }
  }

  // TLS: the credentials are read and checked now, before a device is opened.
  const auto tls_dir = args.get("tls");
  const auto tls_hostname = args.get("tls-hostname");
  std::optional<io::TlsCredentials> creds;
  if (tls_dir) {
    if (to_spec && !listen) return usage_flag("--tls", "is for migrations between processes (--listen, or --to HOST:PORT)");
    if (tls_dir->empty()) return usage_flag("--tls", "wants a directory of certificates");
    auto c = io::TlsCredentials::load(*tls_dir, listen ? io::TlsRole::kServer : io::TlsRole::kClient);
    if (!c.ok()) return usage_flag("--tls", c.error().context);
    creds.emplace(std::move(*c));
  }
  if (tls_hostname) {
    if (!tls_dir || listen) return usage_flag("--tls-hostname", "is for the source side with --tls");
    if (tls_hostname->empty()) return usage_flag("--tls-hostname", "wants a name");
  }
  if (listen && !tls_dir) {
    auto lo = io::is_loopback(*where);
    if (!lo.ok()) return usage_flag("--listen", lo.error().context);
    if (!*lo && !args.has("allow-plaintext")) {
      return usage_flag("--listen", "'" + *listen + "' is not a loopback address: give --tls DIR (or --allow-plaintext "
                                    "to accept an unauthenticated, unencrypted source)");
    }
  }
  if (args.has("allow-plaintext") && (!listen || tls_dir)) {
    return usage_flag("--allow-plaintext", "is for --listen without --tls");
  }
  std::optional<io::TlsInfo> tls_info;
  double tls_setup_s = 0;  // handshake and handover to the kernel
  auto secure = [&](int fd, const std::string& peer) -> Result<void> {
    if (!creds) return ok();
    io::TlsOptions o;
    o.peer = peer;
    o.hostname = tls_hostname ? *tls_hostname : (where ? where->host : std::string());
    o.timeout = std::chrono::seconds(std::min<uint64_t>(*timeout, 60));
    o.cancel = ctx.cancel();
    const auto t0 = std::chrono::steady_clock::now();
    tls_info = MDEVMIG_TRY(io::secure_socket(fd, *creds, o));
    tls_setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return ok();
  };

  engine::SourceOptions sopt;
  sopt.policy.downtime_target_s = static_cast<double>(*downtime) / 1000.0;
  sopt.policy.max_iterations = static_cast<uint32_t>(*max_it);
  sopt.policy.max_precopy_s = *max_pre;
  sopt.precopy = !args.has("no-precopy");
  sopt.peer_timeout = std::chrono::seconds(*timeout);
  sopt.cancel = ctx.cancel();
  engine::DestinationOptions dopt;
  dopt.peer_timeout = std::chrono::seconds(*timeout);
  dopt.cancel = ctx.cancel();

  const bool json = ctx.json();
  const bool verbose = args.has("verbose");
  Progress progress("migrate");
  sopt.on_iteration = [&](const engine::IterationStats& s) {
    const std::string line = iteration_line(s);
    if (verbose) {
      std::fprintf(stderr, "mdevmig migrate: %s\n", line.c_str());
    } else {
      progress.update(0, 0, line);
    }
  };

  // --report: the picture of a completed migration, drawn from the report printed (a
  // failed migration has none). Written once the result is known; it never changes it.
  auto picture = [&](const engine::MigrationReport& r, const std::string& title,
                     std::vector<std::pair<std::string, std::string>> facts) {
    if (!*report_file) return;
    report::Migration m = report::from_engine(r, title);
    m.facts.insert(m.facts.begin(), facts.begin(), facts.end());
    if (tls_info) m.facts.emplace_back("transport", tls_info->version + " " + tls_info->cipher + ", peer " + tls_info->peer_subject);
    write_picture(kCmd, **report_file, report::render(m, *(*report_file)->picture));
  };

  // ---- destination process ----------------------------------------------------------
  if (listen) {
    auto dst = open_side(*to, *pref, gbytes, *guest_iova, false);
    if (!dst.ok()) return fail(dst.error());
    auto lfd = io::listen_tcp(*where);
    if (!lfd.ok()) return fail(lfd.error());
    auto port = io::local_port(lfd->get());
    if (!port.ok()) return fail(port.error());
    std::fprintf(stderr, "mdevmig migrate: listening on %s:%u\n", where->host.c_str(), *port);
    std::fflush(stderr);
    auto conn = io::accept_one(lfd->get(), std::chrono::seconds(*timeout), ctx.cancel());
    if (!conn.ok()) return fail(conn.error());
    if (auto t = secure(conn->get(), io::peer_name(conn->get())); !t.ok()) return fail(t.error());
    auto rep = engine::run_destination(*dst->ch, dst->id, dst->guest ? &*dst->guest : nullptr, conn->get(), dopt);
    if (!rep.ok()) return fail(rep.error());
    picture(*rep, "mdevmig migrate: destination " + *to, {{"listening on", *listen}, {"destination", *to}});
    if (json) {
      nlohmann::json j = report_json(*rep);
      j["tls"] = tls_json(tls_info, tls_setup_s);
      ctx.print_json(json_document(kCmd, j));
    } else {
      print_report(*rep, "destination");
      print_tls(tls_info);
    }
    return kExitOk;
  }

  auto src = open_side(*from, *pref, gbytes, *guest_iova, true);
  if (!src.ok()) return fail(src.error());

  std::unique_ptr<Workload> workload;
  if (wcfg.bar2 || wcfg.dma) {
    auto w = Workload::start(src->dev->dev(), src->id, src->guest ? &*src->guest : nullptr, wcfg);
    if (!w.ok()) return fail(w.error());
    workload = std::move(*w);
    sopt.before_stop = [&] { workload->pause(); };
    sopt.after_recover = [&] { workload->resume(); };
  }

  // ---- source process --------------------------------------------------------------
  if (!to_spec) {
    auto conn = io::connect_tcp(*where);
    if (!conn.ok()) {
      progress.finish();
      if (workload) workload->stop();
      return fail(conn.error());
    }
    if (auto t = secure(conn->get(), where->host + ":" + std::to_string(where->port)); !t.ok()) {
      progress.finish();
      if (workload) workload->stop();
      return fail(t.error().add_note("the source device was not stopped"));
    }
    auto rep = engine::run_source(*src->ch, src->id, src->guest ? &*src->guest : nullptr, conn->get(), sopt);
    progress.finish();
    if (workload) workload->stop();
    if (!rep.ok()) return fail(rep.error());
    picture(*rep, "mdevmig migrate: " + *from + " to " + *to, {{"source", *from}, {"destination", *to}});
    if (json) {
      nlohmann::json j = report_json(*rep);
      j["tls"] = tls_json(tls_info, tls_setup_s);
      ctx.print_json(json_document(kCmd, j));
    } else {
      print_report(*rep, "source");
      print_tls(tls_info);
    }
    return kExitOk;
  }

  // ---- same host: the destination in a thread, joined by a socketpair ------------------
  auto dst = open_side(*to, *pref, gbytes, *guest_iova, false);
  if (!dst.ok()) return fail(dst.error());
  auto pair = io::stream_pair();
  if (!pair.ok()) return fail(pair.error());
  std::optional<Result<engine::MigrationReport>> dst_rep;
  std::thread dst_thread([&] {
    dst_rep.emplace(engine::run_destination(*dst->ch, dst->id, dst->guest ? &*dst->guest : nullptr,
                                            pair->second.get(), dopt));
    // Unblocks the source if the destination failed before reading everything.
    ::shutdown(pair->second.get(), SHUT_RDWR);
  });
  auto rep = engine::run_source(*src->ch, src->id, src->guest ? &*src->guest : nullptr, pair->first.get(), sopt);
  ::shutdown(pair->first.get(), SHUT_RDWR);
  dst_thread.join();
  progress.finish();
  if (workload) workload->stop();
  // Interrupted, both sides stop; the source's error says where its device is.
  if (!rep.ok() && rep.error().errnum == EINTR) return fail(rep.error());
  if (!dst_rep->ok()) return fail(dst_rep->error());
  if (!rep.ok()) return fail(rep.error());
  picture(*rep, "mdevmig migrate: " + *from + " to " + *to + " (same host)",
          {{"source", *from},
           {"destination", *to},
           {"destination's downtime", report::time_text((*dst_rep)->downtime_s) + " (from the switchover to running)"}});

  std::string verified = "not requested";
  if (args.has("verify")) {
    if (wcfg.dma) {
      verified = "skipped (the DMA workload's in-flight work continues on the destination)";
    } else {
      auto v = verify_same(*src, *dst);
      if (!v.ok()) {
        ctx.fail(v.error());
        return kExitFailed;  // the migration ran; what arrived differs
      }
      verified = *v;
    }
  }
  if (json) {
    nlohmann::json j = report_json(*rep);
    j["destination_downtime_s"] = (*dst_rep)->downtime_s;
    j["verify"] = verified;
    if (workload) j["workload"] = {{"bar2_pages_written", workload->pages_written()}, {"dma_descriptors", workload->descriptors()}};
    ctx.print_json(json_document(kCmd, j));
  } else {
    print_report(*rep, "same host");
    if (workload) {
      std::printf("  workload: %" PRIu64 " BAR2 page writes, %" PRIu64 " DMA descriptors\n", workload->pages_written(),
                  workload->descriptors());
    }
    std::printf("  verify: %s\n", verified.c_str());
  }
  return kExitOk;
}

}  // namespace mdevmig::cli
