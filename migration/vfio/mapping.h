// Mapping: an owned mmap()ed range (a device region window, or anonymous memory to
// hand to a device for DMA).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "base/result.h"

namespace mdevmig::vfio {

/// Move-only owner of an mmap()ed range; munmaps it on destruction.
class Mapping {
 public:
  Mapping() = default;
  ~Mapping() { reset(); }
  Mapping(Mapping&& other) noexcept
      : addr_(std::exchange(other.addr_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  Mapping& operator=(Mapping&& other) noexcept {
    if (this != &other) {
      reset();
      addr_ = std::exchange(other.addr_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  /// mmap(fd, offset) of `size` bytes with `prot` (PROT_*), MAP_SHARED.
  [[nodiscard]] static Result<Mapping> map_shared(int fd, uint64_t offset, std::size_t size,
                                                  int prot, const std::string& context);
  /// Zeroed, page-aligned private anonymous memory, e.g. as DMA target for a device.
  [[nodiscard]] static Result<Mapping> anonymous(std::size_t size);

  [[nodiscard]] void* data() const noexcept { return addr_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::span<std::byte> bytes() const noexcept {
    return {static_cast<std::byte*>(addr_), size_};
  }
  [[nodiscard]] bool valid() const noexcept { return addr_ != nullptr; }

  /// Unmaps now.
  void reset() noexcept;

 private:
  Mapping(void* addr, std::size_t size) : addr_(addr), size_(size) {}

  void* addr_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace mdevmig::vfio
