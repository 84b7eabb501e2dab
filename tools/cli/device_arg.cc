#include "tools/cli/device_arg.h"

#include "tools/cli/args.h"

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "migration/engine/identity.h"
#include "migration/io/tls.h"
#include "tools/cli/command.h"
#include "tools/cli/held.h"
#include "tools/cli/json_out.h"

namespace mdevmig::cli {

std::string canonical_uuid(std::string_view uuid) {
  std::string s(uuid);
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

Result<DeviceSpec> parse_device_spec(std::string_view text) {
  DeviceSpec s;
  s.text = std::string(text);
  if (text.starts_with("fd:")) {
    const std::string_view num = text.substr(3);
    int fd = -1;
    const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), fd);
    if (num.empty() || ec != std::errc() || end != num.data() + num.size() || fd < 0) {
      return Error::make(EINVAL, "usage",
                         "DEVICE '" + s.text + "': fd:N needs a file descriptor number");
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
    return Error::make(
        EINVAL, "usage",
        "DEVICE '" + s.text + "' is not an mdev UUID, /sys/bus/mdev/devices/UUID or fd:N");
  }
  s.uuid = canonical_uuid(uuid);
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
  if (a.get(first) && a.get(second) &&
      canonical_uuid(*a.get(first)) == canonical_uuid(*a.get(second)))
    return Error::make_verdict(EINVAL, "usage",
                               std::string("--") + first + " and --" + second +
                                   " name the same instance (" + *a.get(first) + ")");
  return std::nullopt;
}

void warn_uuid_mode(std::string_view cmd, const DeviceSpec& spec) {
  if (spec.is_fd() || ::isatty(STDERR_FILENO) != 1) return;
  if (auto held = held_from_env(); held.ok() && find_held(*held, spec.uuid)) return;
  const bool save = cmd == "save";
  std::fprintf(stderr,
               "mdevmig %.*s: note: opening %s by UUID resets it%s (pass the holder's fd as fd:N "
               "to %s a device in use)\n",
               static_cast<int>(cmd.size()), cmd.data(), spec.uuid.c_str(),
               save ? ": this saves a freshly reset device"
                    : ", and it forgets the restored state when mdevmig exits",
               save ? "save" : "restore");
}

std::optional<Error> check_save_file_arg(const std::string& path, bool reading) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return std::nullopt;  // absent: writing creates it, reading reports it
  if (S_ISREG(st.st_mode)) return std::nullopt;
  const char* what = S_ISDIR(st.st_mode)                          ? "a directory"
                     : S_ISFIFO(st.st_mode)                       ? "a pipe"
                     : S_ISSOCK(st.st_mode)                       ? "a socket"
                     : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device node"
                                                                  : "not a regular file";
  return Error::make_verdict(
      EINVAL, "usage",
      "FILE '" + path + "' is " + what + "; save files are regular files (" +
          (reading ? "they are mapped, not streamed: copy it to a file first"
                   : "written next to FILE and renamed over it: name a file") +
          ")");
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
  // A held instance: the holder's, or an error (opening it here would reset it).
  auto held = held_from_env();
  if (!held.ok()) return held.error();
  if (auto entry = find_held(*held, spec.uuid)) {
    auto fd = open_held(*entry);
    if (!fd.ok()) return std::move(fd.error()).add_context("DEVICE " + spec.uuid);
    auto dev = vfio::Device::open(std::move(*fd), spec.uuid);
    if (!dev.ok()) return std::move(dev.error()).add_context("DEVICE " + spec.uuid + " (held)");
    d.fd_dev_.emplace(std::move(dev.value()));
    d.held_ = true;
    return d;
  }
  // The one expected failure gets its own words (sysfs names instances in lower case;
  // the UUID is canonical here).
  if (struct stat st{}; ::stat(spec.sysfs_path().c_str(), &st) != 0 && errno == ENOENT) {
    return Error::make_verdict(
        ENODEV, "open DEVICE",
        "no mdev device " + spec.uuid + " (see `mdevctl list` or ls /sys/bus/mdev/devices)");
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
  if (e.errnum == schema::kCorruptErrno || e.errnum == schema::kIncompatibleErrno)
    return kExitCorrupt;
  // A peer that does not speak TLS (or speaks it to us without --tls): incompatible.
  if (e.verdict && e.errnum == io::kTlsProtocolErrno) return kExitCorrupt;
  // A peer whose certificate we reject, or that rejects ours: the peer failed.
  if (e.verdict && e.errnum == io::kTlsAuthErrno) return kExitFailed;
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
  const int code = exit_code_for(e);
  std::fprintf(stderr, "mdevmig %.*s: %s\n", static_cast<int>(cmd.size()), cmd.data(),
               e.message().c_str());
  if (json_errors()) {
    Json j = json_document(cmd);
    j["error"] = {{"exit_code", code}, {"operation", e.op}, {"message", e.message()}};
    std::printf("%s\n", json_text(j).c_str());
    std::fflush(stdout);
  }
  return code;
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

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string duration_text(double s) {
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%.0f s", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%d min %02d s", static_cast<int>(s) / 60,
                  static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%d h %02d min", static_cast<int>(s) / 3600,
                  static_cast<int>(s) / 60 % 60);
  }
  return buf;
}

}  // namespace

std::string progress_line(std::string_view label, uint64_t done, uint64_t total, double seconds,
                          std::size_t width, std::string_view extra) {
  std::string tail = human_bytes(static_cast<double>(done));
  if (total > 0) tail += " of " + human_bytes(static_cast<double>(total));
  if (seconds > 0.2 && done > 0) {
    const double rate = static_cast<double>(done) / seconds;
    tail += ", " + human_bytes(rate) + "/s";
    if (total > done) tail += ", ETA " + duration_text(static_cast<double>(total - done) / rate);
  }
  if (!extra.empty()) tail += "  " + std::string(extra);
  std::string line(label);
  line += ' ';
  if (total > 0) {
    // "[####....] " takes what is left after the text, 10 to 30 columns.
    const std::size_t used = line.size() + tail.size() + 3;
    const std::size_t room = width > used ? width - used : 0;
    if (room >= 10) {
      const std::size_t bar = std::min<std::size_t>(room, 30);
      const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
      const auto fill = static_cast<std::size_t>(frac * static_cast<double>(bar));
      line += "[" + std::string(fill, '#') + std::string(bar - fill, '.') + "] ";
    }
  }
  line += tail;
  if (width > 0 && line.size() > width) line.resize(width);
  return line;
}

Progress::Progress(std::string label) : label_(std::move(label)) {
  const char* term = std::getenv("TERM");
  live_ = ::isatty(STDERR_FILENO) == 1 && term != nullptr && std::string_view(term) != "dumb" &&
          *term != '\0';
  start_ms_ = now_ms();
}
Progress::~Progress() { finish(); }

void Progress::update(uint64_t done, uint64_t total, std::string_view extra) {
  const int64_t now = now_ms();
  const double seconds = static_cast<double>(now - start_ms_) / 1000;
  if (!live_) {
    // A plain line now and then, for logs and dumb terminals.
    const auto every = static_cast<int64_t>(kPlainEvery * 1000);
    if (now - start_ms_ < every || (last_ms_ >= 0 && now - last_ms_ < every)) return;
    last_ms_ = now;
    std::fprintf(stderr, "%s\n", progress_line(label_, done, total, seconds, 0, extra).c_str());
    return;
  }
  if (drawn_ && now - last_ms_ < 100 && done != total) return;  // ~10 redraws a second
  last_ms_ = now;
  struct winsize ws {};
  const std::size_t width =
      ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
  // One column short of the edge: a full line would wrap on some terminals.
  std::fprintf(stderr, "\r\033[K%s",
               progress_line(label_, done, total, seconds, width - 1, extra).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (live_ && drawn_) {
    std::fputc('\n', stderr);
    drawn_ = false;
  }
}

}  // namespace mdevmig::cli
