// mdevmig instances through the standard mdev sysfs files: find a parent with room for
// a type, create an instance (removed again on destruction), or adopt an existing one;
// and the small sysfs file helpers under them. The tools (qemu-migrate, stress) and the
// lab tests use this one copy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace mdevmig::mdev {

/// Where the mdev sysfs files are; tests point this elsewhere.
struct SysfsRoot {
  std::string path = "/sys";
};

/// mdevmig parents (/sys/class/mdev_bus/<name> whose types are "mdevmig-*"), sorted.
[[nodiscard]] std::vector<std::string> mdevmig_parents(const SysfsRoot& root = {});
/// available_instances of `type` ("quarter") on `parent`; 0 if it has no such type.
[[nodiscard]] uint64_t available_instances(const std::string& parent, const std::string& type,
                                           const SysfsRoot& root = {});
/// UUIDs of every mdev device, sorted.
[[nodiscard]] std::vector<std::string> mdev_devices(const SysfsRoot& root = {});
/// A new random v4 UUID.
[[nodiscard]] std::string random_uuid();
/// Names in a directory (no dot files), sorted; empty if it does not exist.
[[nodiscard]] std::vector<std::string> list_dir(const std::string& path);
/// The sysfs folder of a parent's type:
/// <root>/class/mdev_bus/<parent>/mdev_supported_types/mdevmig-<type>.
[[nodiscard]] std::string type_dir(const std::string& parent, const std::string& type,
                                   const SysfsRoot& root = {});

/// One instance. Created ones are removed on destruction; adopted ones are left alone.
class MdevInstance {
 public:
  /// Creates a `type` instance on `parent`, or on the first parent with room if empty.
  [[nodiscard]] static Result<MdevInstance> create(const std::string& type,
                                                   const std::string& parent = {},
                                                   const SysfsRoot& root = {});
  /// An existing instance, which must exist and is never removed by this object.
  [[nodiscard]] static Result<MdevInstance> adopt(const std::string& uuid,
                                                  const SysfsRoot& root = {});

  MdevInstance(MdevInstance&& other) noexcept;
  MdevInstance& operator=(MdevInstance&& other) noexcept;
  MdevInstance(const MdevInstance&) = delete;
  MdevInstance& operator=(const MdevInstance&) = delete;
  ~MdevInstance();

  [[nodiscard]] const std::string& uuid() const { return uuid_; }
  [[nodiscard]] const std::string& type() const { return type_; }  ///< "quarter"
  [[nodiscard]] const std::string& parent() const { return parent_; }
  [[nodiscard]] bool owned() const { return owned_; }
  /// /sys/bus/mdev/devices/<uuid>
  [[nodiscard]] std::string dir() const;
  /// Device memory bytes (from the mdevmig/memory attribute).
  [[nodiscard]] Result<uint64_t> mem_size() const;
  /// A per-instance attribute: <dir>/mdevmig/<name>, without the trailing newline.
  [[nodiscard]] Result<std::string> attr(const std::string& name) const;
  /// The value of one "key=value" line of the mdevmig/migration attribute.
  [[nodiscard]] Result<std::string> migration_field(const std::string& key) const;

  /// Removes a created instance now (also done by the destructor).
  [[nodiscard]] Result<void> remove();

 private:
  MdevInstance(std::string uuid, std::string type, std::string parent, bool owned, SysfsRoot root)
      : uuid_(std::move(uuid)),
        type_(std::move(type)),
        parent_(std::move(parent)),
        owned_(owned),
        root_(std::move(root)) {}

  std::string uuid_, type_, parent_;
  bool owned_ = false;
  SysfsRoot root_;
};

/// Reads a whole small file without the trailing newline.
[[nodiscard]] Result<std::string> read_text_file(const std::string& path);
/// Writes `value` to a sysfs file in one write().
[[nodiscard]] Result<void> write_text_file(const std::string& path, const std::string& value);

}  // namespace mdevmig::mdev
