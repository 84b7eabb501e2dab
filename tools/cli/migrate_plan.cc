// The command line of `mdevmig migrate`: its options, and every value checked into a
// MigratePlan before a device is opened or a socket made.
#include <cstdint>
#include <string>

#include "tools/cli/choice_options.h"
#include "tools/cli/command.h"
#include "tools/cli/migrate.h"

namespace mdevmig::cli {
namespace {

constexpr uint64_t kGuestPage = 4096;
constexpr uint64_t kMaxGuestMem = 1ull << 40;

Error usage(const std::string& what) { return Error::make_verdict(EINVAL, "usage", what); }

// The numbers, the workload and --report.
Result<void> parse_values(const Args& args, MigratePlan& p) {
  auto pref = get_channel(args);
  if (!pref.ok()) return pref.error();
  auto downtime = args.get_uint("downtime", 0, kMaxDowntimeMs);
  auto max_it = args.get_uint("max-iterations", 0, UINT32_MAX);
  auto max_pre = args.get_double("max-precopy", 0, 86400);
  auto rate = args.get_double("dirty-rate", 0, 100);
  auto guest_bytes = args.get_size("guest-mem", 0, kMaxGuestMem);
  auto guest_iova = args.get_address("guest-iova", kGuestPage);
  auto timeout = args.get_uint("timeout", 1, 86400);
  auto workload_cfg = parse_workload(*args.get("workload"));
  for (const Error* e :
       {downtime.ok() ? nullptr : &downtime.error(), max_it.ok() ? nullptr : &max_it.error(),
        max_pre.ok() ? nullptr : &max_pre.error(), rate.ok() ? nullptr : &rate.error(),
        guest_bytes.ok() ? nullptr : &guest_bytes.error(),
        guest_iova.ok() ? nullptr : &guest_iova.error(), timeout.ok() ? nullptr : &timeout.error(),
        workload_cfg.ok() ? nullptr : &workload_cfg.error()}) {
    if (e != nullptr) return *e;
  }
  p.report_file = MDEVMIG_TRY(report_arg(args, false));
  p.channel = *pref;
  p.downtime_ms = *downtime;
  p.max_iterations = *max_it;
  p.max_precopy_s = *max_pre;
  p.timeout_s = *timeout;
  p.workload = *workload_cfg;
  p.workload.dirty_pct_per_s = *rate;
  p.guest_iova = *guest_iova;
  p.guest_bytes = *guest_bytes;
  if (p.guest_bytes % kGuestPage != 0)
    return usage_error("--guest-mem", "wants whole 4K pages, got '" + *args.get("guest-mem") + "'");
  if (p.workload.dma && p.guest_bytes == 0) p.guest_bytes = 16u << 20;
  if (p.guest_bytes > 0 && p.guest_iova > UINT64_MAX - p.guest_bytes + 1)
    return usage_error("--guest-iova", "guest memory at '" + *args.get("guest-iova") +
                                           "' would end past the last address");
  return ok();
}

// --from, --to and --listen: the role, the DEVICE arguments, and the address a process
// connects to or listens on.
Result<void> parse_role(const Args& args, MigratePlan& p) {
  p.from = args.get("from");
  p.to = args.get("to");
  p.listen = args.get("listen");
  auto device = [&](const char* flag, const std::string& text) -> Result<DeviceSpec> {
    auto d = parse_device_spec(text);
    if (!d.ok()) return usage_error(flag, d.error().context);
    if (p.guest_bytes > 0 && d->is_fd())
      return usage_error(flag, "--guest-mem needs devices opened by UUID (" + text +
                                   " is an fd: this process has no container for it)");
    return d;
  };
  auto address = [&](const char* flag, const std::string& text) -> Result<io::HostPort> {
    auto hp = io::parse_host_port(text, "127.0.0.1");
    if (!hp.ok())
      return usage_error(flag, "wants [HOST:]PORT (PORT 0 to 65535), got '" + text + "'");
    return hp;
  };
  const auto& from = p.from;
  const auto& to = p.to;
  if (p.listen) {
    if (from || !to || !looks_like_device(*to))
      return usage("--listen needs --to DEVICE and no --from");
    p.to_spec = MDEVMIG_TRY(device("--to", *to));
    p.where = MDEVMIG_TRY(address("--listen", *p.listen));
    return ok();
  }
  if (!from || !to) return usage("give --from and --to (or --listen and --to)");
  const DeviceSpec f = MDEVMIG_TRY(device("--from", *from));
  if (looks_like_device(*to)) {
    const DeviceSpec t = MDEVMIG_TRY(device("--to", *to));
    p.to_spec = t;
    if ((!f.uuid.empty() && f.uuid == t.uuid) || (f.is_fd() && f.fd == t.fd))
      return usage("--from and --to name the same device (" + *from + ", " + *to + ")");
    return ok();
  }
  const io::HostPort w = MDEVMIG_TRY(address("--to", *to));
  if (w.host.empty() || w.port == 0)
    return usage_error("--to", "wants HOST:PORT with a port, got '" + *to + "'");
  p.where = w;
  return ok();
}

// TLS: the credentials are read and checked now, before a device is opened.
Result<void> parse_tls(const Args& args, MigratePlan& p) {
  const auto tls_dir = args.get("tls");
  const auto& listen = p.listen;
  p.tls_hostname = args.get("tls-hostname");
  if (tls_dir) {
    if (p.to_spec && !listen)
      return usage_error("--tls",
                         "is for migrations between processes (--listen, or --to HOST:PORT)");
    if (tls_dir->empty()) return usage_error("--tls", "wants a directory of certificates");
    auto c =
        io::TlsCredentials::load(*tls_dir, listen ? io::TlsRole::kServer : io::TlsRole::kClient);
    if (!c.ok()) return usage_error("--tls", c.error().context);
    p.creds.emplace(std::move(*c));
  }
  if (p.tls_hostname) {
    if (!tls_dir || listen)
      return usage_error("--tls-hostname", "is for the source side with --tls");
    if (p.tls_hostname->empty()) return usage_error("--tls-hostname", "wants a name");
  }
  if (listen && !tls_dir) {
    auto lo = io::is_loopback(*p.where);
    if (!lo.ok()) return usage_error("--listen", lo.error().context);
    if (!*lo && !args.has("allow-plaintext")) {
      return usage_error("--listen",
                         "'" + *listen +
                             "' is not a loopback address: give --tls DIR (or --allow-plaintext "
                             "to accept an unauthenticated, unencrypted source)");
    }
  }
  if (args.has("allow-plaintext") && (!listen || tls_dir)) {
    return usage_error("--allow-plaintext", "is for --listen without --tls");
  }
  return ok();
}

}  // namespace

Args migrate_args() {
  Args args(
      "migrate (--from DEVICE --to DEVICE|HOST:PORT | --listen [ADDR:]PORT --to DEVICE) [options]",
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
  args.option("listen", "[ADDR:]PORT",
              "be the destination: accept one source (ADDR default 127.0.0.1)");
  args.option("tls", "DIR",
              "TLS with the certificates in DIR (ca-cert.pem, server-*.pem / client-*.pem)");
  args.option("tls-hostname", "NAME",
              "source: the name the listener's certificate must carry (default: HOST of --to)");
  args.flag("allow-plaintext",
            "let --listen accept a source without TLS on a non-loopback address");
  declare_channel(args, "migration interface (auto: v2 pre-copy, else v1 region, else v2)");
  args.option("downtime", "MS", "downtime target (0: iterate until a cap)", "300");
  args.option("max-iterations", "N", "switch over after N pre-copy iterations", "30");
  args.option("max-precopy", "SECONDS", "switch over after this long (0: no limit)", "0");
  args.flag("no-precopy", "stop the device at once (no pre-copy)");
  args.option("workload", "none|bar2|dma|bar2,dma", "live writer on the source while pre-copy runs",
              "none");
  args.option("dirty-rate", "PCT", "bar2 workload: percent of device memory written per second",
              "1");
  args.option("guest-mem", "SIZE", "DMA-mapped guest memory migrated too (0: none; dma needs it)",
              "0");
  args.option("guest-iova", "IOVA", "where guest memory is mapped (4K-aligned)", "0x40000000");
  args.flag("no-skip-unchanged",
            "send every dirty guest page, also those whose content was already sent");
  args.option("timeout", "SECONDS", "peer silence that fails the migration", "300");
  args.flag("verify", "same host: compare device memory, registers and guest memory afterwards");
  args.flag("verbose", "one line per pre-copy iteration on stderr, also when it is not a terminal");
  args.flag("json", "print the report as JSON");
  args.option("report", "FILE", report_help(false));
  args.epilogue(kExitCodesHelp);
  return args;
}

Result<MigratePlan> parse_migrate_plan(const Args& args) {
  MigratePlan p;
  MDEVMIG_TRY(parse_values(args, p));
  MDEVMIG_TRY(parse_role(args, p));
  MDEVMIG_TRY(parse_tls(args, p));
  return p;
}

}  // namespace mdevmig::cli
