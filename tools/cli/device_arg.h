// DEVICE arguments of the CLI (an mdev UUID, /sys/bus/mdev/devices/UUID, or fd:N for a
// VFIO device fd a parent process passed down), error reporting with the exit codes of
// command.h, and the progress line shown when stderr is a terminal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "migration/schema/codec.h"
#include "migration/vfio/device.h"
#include "migration/vfio/mdev.h"

namespace mdevmig::cli {

/// A DEVICE argument, parsed (no side effects).
struct DeviceSpec {
  std::string text;  ///< as given
  std::string uuid;  ///< for UUID and sysfs forms
  int fd = -1;       ///< for fd:N
  [[nodiscard]] bool is_fd() const { return fd >= 0; }
  [[nodiscard]] std::string sysfs_path() const {
    return uuid.empty() ? std::string() : "/sys/bus/mdev/devices/" + uuid;
  }
};

/// What --help of save and restore says about the DEVICE forms: by UUID the instance
/// is opened here, and opening resets it and closing forgets its state.
inline constexpr const char* kDeviceFormsHelp =
    "DEVICE is an mdev UUID (any case), /sys/bus/mdev/devices/UUID, or fd:N (an open VFIO\n"
    "device fd passed down by the process that holds the device, e.g. a VMM or a harness).\n"
    "By UUID, mdevmig opens the instance itself: opening an instance resets it, and closing\n"
    "it (when mdevmig exits) forgets its state. So `save UUID` saves a freshly reset device,\n"
    "not what a guest left in it, and what `restore UUID` loads is gone when mdevmig exits.\n"
    "To save or restore a device in use, run mdevmig from the process that holds it open\n"
    "and pass the fd: fd:N (README: \"Passing a device fd\"). Or keep the instance open\n"
    "across commands with `mdevmig hold UUID -- CMD`: by UUID, the commands CMD runs use\n"
    "the held instance (see mdevmig hold --help).";

/// On a terminal, a one-line warning that DEVICE given by UUID is reset by opening it
/// and forgets a restored state on exit (nothing for fd:N, a held UUID, or when stderr
/// is not a tty).
void warn_uuid_mode(std::string_view cmd, const DeviceSpec& spec);

/// Parses a DEVICE argument; EINVAL (a usage error) if it is none of the three forms.
[[nodiscard]] Result<DeviceSpec> parse_device_spec(std::string_view text);
/// An mdev UUID as sysfs spells it (lower case); any case is accepted on the command line.
[[nodiscard]] std::string canonical_uuid(std::string_view uuid);
/// A FILE argument of save (`reading` false), restore or inspect: a usage error if it
/// names a directory, a pipe or anything else that is not a regular file. Looked at with
/// stat() only (opening a FIFO would block). An absent FILE passes.
[[nodiscard]] std::optional<Error> check_save_file_arg(const std::string& path, bool reading);
/// Whether `text` looks like a DEVICE (rather than HOST:PORT).
[[nodiscard]] bool looks_like_device(std::string_view text);

class Args;
/// The two instance flags of a pair (--src/--dst, --a/--b): each, if given, an mdev UUID,
/// and not the same one. A usage error naming the flag otherwise.
[[nodiscard]] std::optional<Error> check_instance_pair(const Args& a, const char* first,
                                                       const char* second);

/// An opened device: by UUID (container, group and device owned here), a UUID that
/// `mdevmig hold` holds (MDEVMIG_HELD, held.h), or a passed fd.
class OpenedDevice {
 public:
  /// By UUID, a held instance is used as held (validated; see open_held()), never opened
  /// afresh; a malformed MDEVMIG_HELD is a usage error rather than a reason to reset it.
  [[nodiscard]] static Result<OpenedDevice> open(const DeviceSpec& spec);
  [[nodiscard]] const vfio::Device& dev() const { return mdev_ ? mdev_->device : *fd_dev_; }
  /// The container, when this process opened the device (nullptr for fd:N and held ones).
  [[nodiscard]] const vfio::Container* container() const {
    return mdev_ ? &mdev_->container : nullptr;
  }
  /// The group, when this process opened the device (nullptr for fd:N and held ones).
  [[nodiscard]] const vfio::Group* group() const { return mdev_ ? &mdev_->group : nullptr; }
  /// Whether the device is one `mdevmig hold` holds (MDEVMIG_HELD).
  [[nodiscard]] bool held() const { return held_; }
  [[nodiscard]] const DeviceSpec& spec() const { return spec_; }
  /// Identity for headers and hellos.
  [[nodiscard]] Result<schema::DeviceIdentity> identity() const;

 private:
  DeviceSpec spec_;
  std::optional<vfio::OpenMdev> mdev_;
  std::optional<vfio::Device> fd_dev_;
  bool held_ = false;
};

/// The exit code for an error: usage 2, corrupt or incompatible input 4, a dropped or
/// refusing peer 1, interrupted (EINTR: a Cancel fired) 130, every other device or
/// system failure 3.
[[nodiscard]] int exit_code_for(const Error& e);
/// Prints "mdevmig CMD: <error>" on stderr (one line) and returns exit_code_for(e).
int report_error(std::string_view cmd, const Error& e);
/// "12.3 MiB".
[[nodiscard]] std::string human_bytes(double bytes);

/// One progress line: label, a bar when the total is known, bytes, rate and ETA, cut to
/// `width` columns (the bar shrinks first, then the line is cut).
[[nodiscard]] std::string progress_line(std::string_view label, uint64_t done, uint64_t total,
                                        double seconds, std::size_t width,
                                        std::string_view extra = {});

/// Progress on stderr. On a terminal (not TERM=dumb): one line redrawn in place, as wide
/// as the terminal (TIOCGWINSZ, read at each redraw). Otherwise (a log, TERM=dumb): a
/// plain line every `kPlainEvery` seconds, none for work that ends sooner.
class Progress {
 public:
  static constexpr double kPlainEvery = 5.0;
  explicit Progress(std::string label);
  ~Progress();
  /// Redraws: `done` of `total` bytes (total 0: unknown), plus free text.
  void update(uint64_t done, uint64_t total, std::string_view extra = {});
  /// Ends the line.
  void finish();
  [[nodiscard]] bool live() const { return live_; }

 private:
  std::string label_;
  bool live_;  // redrawn in place (a terminal that can)
  bool drawn_ = false;
  int64_t start_ms_ = -1, last_ms_ = -1;
};

}  // namespace mdevmig::cli
