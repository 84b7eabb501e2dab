#include "tools/cli/stress_local_model.h"

#include <sys/mman.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace mdevmig::cli::local {

Result<SharedState> SharedState::create(uint64_t mem_size) {
  SharedState s;
  s.mem_size_ = mem_size;
  // The snapshot of an idle replay has one size (every page, the state records); the
  // margin covers the records' own variation.
  s.cap_ = (Expected(mem_size).replay.snapshot().size() + (64u << 10) + kPage - 1) / kPage * kPage;
  void* p = ::mmap(nullptr, 2 * s.slot_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
  if (p == MAP_FAILED) return Error::from_errno("mmap", "stress expected state");
  s.base_ = static_cast<std::byte*>(p);
  return s;
}

SharedState::SharedState(SharedState&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)), mem_size_(o.mem_size_), cap_(o.cap_) {}

SharedState::~SharedState() {
  if (base_) ::munmap(base_, 2 * slot_bytes());
}

SharedState::Slot SharedState::slot(std::size_t i) const {
  std::byte* p = base_ + i * slot_bytes();
  return {reinterpret_cast<Header*>(p), p + kPage, p + kPage + cap_};
}

Result<void> SharedState::put(const Slot& s, const Expected& e) const {
  const std::vector<uint8_t> snap = e.replay.snapshot();
  if (snap.size() > cap_)
    return Error::make(ENOSPC, "hand over the expected state",
                       std::to_string(snap.size()) + " bytes, room for " + std::to_string(cap_));
  s.hdr->valid = 0;
  std::memcpy(s.snapshot, snap.data(), snap.size());
  s.hdr->bytes = snap.size();
  s.hdr->counts = e.counts;
  s.hdr->valid = 1;
  return ok();
}

Result<void> SharedState::get(const Slot& s, Expected& e) const {
  if (!s.hdr->valid)
    return Error::make(ENOENT, "take over the expected state", "nothing was handed over");
  MDEVMIG_TRY(e.replay.restore({reinterpret_cast<const uint8_t*>(s.snapshot), s.hdr->bytes},
                               s.hdr->counts.descs));
  e.counts = s.hdr->counts;
  return ok();
}

Result<void> SharedState::hand_off(const Expected& e) const { return put(slot(0), e); }

Result<void> SharedState::take_over(Expected& e) const { return get(slot(0), e); }

Result<void> SharedState::save_checkpoint(const Expected& e,
                                          std::span<const std::byte> guest) const {
  const Slot s = slot(1);
  MDEVMIG_TRY(put(s, e));
  std::memcpy(s.guest, guest.data(), std::min<std::size_t>(guest.size(), kGuestBytes));
  return ok();
}

Result<void> SharedState::load_checkpoint(Expected& e, std::span<std::byte> guest) const {
  const Slot s = slot(1);
  MDEVMIG_TRY(get(s, e));
  std::memcpy(guest.data(), s.guest, std::min<std::size_t>(guest.size(), kGuestBytes));
  return ok();
}

}  // namespace mdevmig::cli::local
