#include "tools/cli/device_arg.h"

#include "tools/cli/args.h"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>

#include "migration/engine/identity.h"
#include "tools/cli/command.h"

namespace mdevmig::cli {

Result<DeviceSpec> parse_device_spec(std::string_view text) {
  DeviceSpec s;
  s.text = std::string(text);
  if (text.starts_with("fd:")) {
    const std::string_view num = text.substr(3);
    int fd = -1;
    const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), fd);
    if (num.empty() || ec != std::errc() || end != num.data() + num.size() || fd < 0) {
      return Error::make(EINVAL, "usage", "DEVICE '" + s.text + "': fd:N needs a file descriptor number");
    }
    s.fd = fd;
    return s;
  }
  std::string_view uuid = text;
  for (std::string_view prefix : {"/sys/bus/mdev/devices/", "/sys/class/mdev_bus/"}) {
    if (text.starts_with(prefix)) uuid = text.substr(text.rfind('/') + 1);
  }
  if (text.starts_with("/sys/") && uuid == text) uuid = text.substr(text.rfind('/') + 1);
  while (!uuid.empty() && uuid.back() == '/') uuid.remove_suffix(1);
  if (!vfio::validate_mdev_uuid(uuid).ok()) {
    return Error::make(EINVAL, "usage",
                       "DEVICE '" + s.text + "' is not an mdev UUID, /sys/bus/mdev/devices/UUID or fd:N");
  }
  s.uuid = std::string(uuid);
  return s;
}

bool looks_like_device(std::string_view text) {
  return text.starts_with("fd:") || text.starts_with("/") || vfio::validate_mdev_uuid(text).ok();
}

std::optional<Error> check_instance_pair(const Args& a, const char* first, const char* second) {
  for (const char* flag : {first, second}) {
    if (auto uuid = a.get(flag); uuid && !vfio::validate_mdev_uuid(*uuid).ok())
      return usage_error(std::string("--") + flag, "wants an mdev UUID, got '" + *uuid + "'");
  }
  if (a.get(first) && a.get(first) == a.get(second))
    return Error::make_verdict(EINVAL, "usage", std::string("--") + first + " and --" + second +
                                                    " name the same instance (" + *a.get(first) + ")");
  return std::nullopt;
}

Result<OpenedDevice> OpenedDevice::open(const DeviceSpec& spec) {
  OpenedDevice d;
  d.spec_ = spec;
  if (spec.is_fd()) {
    // The fd is ours now (inherited from the parent, which keeps its own copy open).
    auto dev = vfio::Device::open(UniqueFd(spec.fd), spec.text);
    if (!dev.ok()) return std::move(dev.error()).add_context("DEVICE " + spec.text);
    d.fd_dev_.emplace(std::move(dev.value()));
    return d;
  }
  auto m = vfio::open_mdev(spec.uuid);
  if (!m.ok()) return std::move(m.error()).add_context("DEVICE " + spec.uuid);
  d.mdev_.emplace(std::move(m.value()));
  return d;
}

Result<schema::DeviceIdentity> OpenedDevice::identity() const {
  return engine::read_identity(dev(), spec_.uuid, spec_.sysfs_path());
}

int exit_code_for(const Error& e) {
  if (e.op == "usage") return kExitUsage;
  if (e.errnum == EINTR) return kExitInterrupted;
  if (e.errnum == schema::kCorruptErrno || e.errnum == schema::kIncompatibleErrno) return kExitCorrupt;
  switch (e.errnum) {
    case ECONNRESET:
    case ECONNREFUSED:
    case EPIPE:
    case ETIMEDOUT:
    case ECANCELED:
    case EHOSTUNREACH:
      return kExitFailed;
    default:
      return kExitDevice;
  }
}

int report_error(std::string_view cmd, const Error& e) {
  std::fprintf(stderr, "mdevmig %.*s: %s\n", static_cast<int>(cmd.size()), cmd.data(), e.message().c_str());
  return exit_code_for(e);
}

std::string human_bytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", bytes, kUnits[u]);
  return buf;
}

Progress::Progress(std::string label) : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) == 1) {}
Progress::~Progress() { finish(); }

void Progress::update(uint64_t done, uint64_t total, std::string_view extra) {
  if (!enabled_) return;
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch()).count();
  if (drawn_ && now - last_ms_ < 100 && done != total) return;  // ~10 redraws a second
  last_ms_ = now;
  std::string bar;
  if (total > 0) {
    const int width = 30;
    const int fill = static_cast<int>(static_cast<double>(done) / static_cast<double>(total) * width);
    bar = "[" + std::string(std::min(fill, width), '#') + std::string(width - std::min(fill, width), '.') + "] ";
  }
  std::fprintf(stderr, "\r\033[K%s %s%s%s%s", label_.c_str(), bar.c_str(), human_bytes(static_cast<double>(done)).c_str(),
               extra.empty() ? "" : "  ", std::string(extra).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (enabled_ && drawn_) {
    std::fputc('\n', stderr);
    drawn_ = false;
  }
}

}  // namespace mdevmig::cli
