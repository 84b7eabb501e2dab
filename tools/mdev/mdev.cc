#include "tools/mdev/mdev.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <random>

#include "base/fd.h"
#include "migration/vfio/mdev.h"
#include "tools/qtest/codec.h"

namespace mdevmig::mdev {

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string type_dir(const std::string& parent, const std::string& type, const SysfsRoot& root) {
  return root.path + "/class/mdev_bus/" + parent + "/mdev_supported_types/mdevmig-" + type;
}

Result<std::string> read_text_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::from_errno("open", path);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) return Error::from_errno("read", path);
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

Result<void> write_text_file(const std::string& path, const std::string& value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return Error::from_errno("open", path);
  if (::write(fd.get(), value.data(), value.size()) < 0)
    return Error::from_errno("write '" + value + "' to", path);
  return ok();
}

std::vector<std::string> mdevmig_parents(const SysfsRoot& root) {
  std::vector<std::string> out;
  for (const auto& name : list_dir(root.path + "/class/mdev_bus")) {
    auto types = list_dir(root.path + "/class/mdev_bus/" + name + "/mdev_supported_types");
    if (!types.empty() && types.front().rfind("mdevmig-", 0) == 0) out.push_back(name);
  }
  return out;
}

uint64_t available_instances(const std::string& parent, const std::string& type,
                             const SysfsRoot& root) {
  auto text = read_text_file(type_dir(parent, type, root) + "/available_instances");
  if (!text) return 0;
  return qemu::parse_c_uint(*text).value_or(0);
}

std::vector<std::string> mdev_devices(const SysfsRoot& root) {
  return list_dir(root.path + "/bus/mdev/devices");
}

std::string random_uuid() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  uint64_t hi = gen(), lo = gen();
  hi = (hi & ~uint64_t{0xf000}) | uint64_t{0x4000};        // version 4
  lo = (lo & ~(uint64_t{3} << 62)) | (uint64_t{2} << 62);  // variant 10
  char buf[40];
  std::snprintf(buf, sizeof buf,
                "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%012" PRIx64, hi >> 32,
                (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48, lo & uint64_t{0xffffffffffff});
  return buf;
}

Result<MdevInstance> MdevInstance::create(const std::string& type, const std::string& parent,
                                          const SysfsRoot& root) {
  std::string chosen = parent;
  if (chosen.empty()) {
    for (const auto& p : mdevmig_parents(root))
      if (available_instances(p, type, root) > 0) {
        chosen = p;
        break;
      }
    if (chosen.empty())
      return Error::make(ENOSPC, "create mdev instance",
                         "no mdevmig parent has room for type " + type);
  }
  std::string uuid = random_uuid();
  MDEVMIG_TRY(write_text_file(type_dir(chosen, type, root) + "/create", uuid));
  return MdevInstance(uuid, type, chosen, /*owned=*/true, root);
}

Result<MdevInstance> MdevInstance::adopt(const std::string& uuid, const SysfsRoot& root) {
  MDEVMIG_TRY(vfio::validate_mdev_uuid(uuid));
  std::string dir = root.path + "/bus/mdev/devices/" + uuid;
  char target[4096];
  ssize_t n = ::readlink((dir + "/mdev_type").c_str(), target, sizeof target - 1);
  if (n < 0) return Error::from_errno("readlink", dir + "/mdev_type");
  std::string t(target, static_cast<std::size_t>(n));
  // .../<parent>/mdev_supported_types/mdevmig-<type>
  std::string type = t.substr(t.rfind('/') + 1);
  if (type.rfind("mdevmig-", 0) != 0)
    return Error::make(EINVAL, "adopt mdev instance", uuid + " is not an mdevmig instance");
  std::string parent;
  if (auto p = t.rfind("/mdev_supported_types/"); p != std::string::npos) {
    std::string head = t.substr(0, p);
    parent = head.substr(head.rfind('/') + 1);
  }
  return MdevInstance(uuid, type.substr(8), parent, /*owned=*/false, root);
}

MdevInstance::MdevInstance(MdevInstance&& other) noexcept
    : uuid_(std::move(other.uuid_)),
      type_(std::move(other.type_)),
      parent_(std::move(other.parent_)),
      owned_(std::exchange(other.owned_, false)),
      root_(std::move(other.root_)) {}

MdevInstance& MdevInstance::operator=(MdevInstance&& other) noexcept {
  if (this != &other) {
    (void)remove();
    uuid_ = std::move(other.uuid_);
    type_ = std::move(other.type_);
    parent_ = std::move(other.parent_);
    owned_ = std::exchange(other.owned_, false);
    root_ = std::move(other.root_);
  }
  return *this;
}

MdevInstance::~MdevInstance() { (void)remove(); }

std::string MdevInstance::dir() const { return root_.path + "/bus/mdev/devices/" + uuid_; }

Result<std::string> MdevInstance::attr(const std::string& name) const {
  return read_text_file(dir() + "/mdevmig/" + name);
}

Result<uint64_t> MdevInstance::mem_size() const {
  std::string text = MDEVMIG_TRY(attr("memory"));
  auto p = text.find("size=");
  if (p == std::string::npos) return Error::make(EPROTO, "parse mdevmig/memory", "'" + text + "'");
  std::string v = text.substr(p + 5);
  v = v.substr(0, v.find_first_of(" \n"));
  auto size = qemu::parse_c_uint(v);
  if (!size) return Error::make(EPROTO, "parse mdevmig/memory", "'" + text + "'");
  return *size;
}

Result<std::string> MdevInstance::migration_field(const std::string& key) const {
  std::string text = MDEVMIG_TRY(attr("migration"));
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == '=')
      return std::string(line.substr(key.size() + 1));
    pos = end + 1;
  }
  return Error::make(ENOENT, "mdevmig/migration field", key);
}

Result<void> MdevInstance::remove() {
  if (!owned_) return ok();
  owned_ = false;
  return write_text_file(dir() + "/remove", "1");
}

}  // namespace mdevmig::mdev
