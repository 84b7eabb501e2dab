// An mdev instance for lab tests: created on construction, removed on destruction.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "common/sysfs.h"

namespace mdevmig::lab {

class Instance {
 public:
  Instance(const std::string& parent, const std::string& type) {
    uuid_ = random_uuid();
    int rc = write_file(type_dir(parent, type) + "/create", uuid_);
    if (rc != 0) {
      ADD_FAILURE() << "creating a " << type << " instance on " << parent << ": errno " << -rc;
      uuid_.clear();
    }
  }
  ~Instance() {
    if (!uuid_.empty()) write_file(sysfs_dir() + "/remove", "1");
  }
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  bool ok() const { return !uuid_.empty(); }
  const std::string& uuid() const { return uuid_; }
  std::string sysfs_dir() const { return "/sys/bus/mdev/devices/" + uuid_; }
  // Per-instance attributes: /sys/bus/mdev/devices/<uuid>/mdevmig/<name>.
  std::string attr(const std::string& name) const {
    return read_file(sysfs_dir() + "/mdevmig/" + name).value_or("<unreadable>");
  }
  int set_attr(const std::string& name, const std::string& value) const {
    return write_file(sysfs_dir() + "/mdevmig/" + name, value);
  }

 private:
  std::string uuid_;
};

}  // namespace mdevmig::lab
