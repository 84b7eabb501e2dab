#include "migration/vfio/mapping.h"

#include <sys/mman.h>

namespace mdevmig::vfio {

Result<Mapping> Mapping::map_shared(int fd, uint64_t offset, std::size_t size, int prot,
                                    const std::string& context) {
  if (size == 0) return Error::make(EINVAL, "mmap", context + ": empty range");
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) return Error::from_errno("mmap", context);
  return Mapping(p, size);
}

Result<Mapping> Mapping::anonymous(std::size_t size) {
  if (size == 0) return Error::make(EINVAL, "mmap", "anonymous: empty range");
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return Error::from_errno("mmap", "anonymous " + std::to_string(size) + " bytes");
  return Mapping(p, size);
}

void Mapping::reset() noexcept {
  if (addr_ != nullptr) ::munmap(addr_, size_);
  addr_ = nullptr;
  size_ = 0;
}

}  // namespace mdevmig::vfio
