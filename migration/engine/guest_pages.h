// The source's half of guest memory in a migration: dirty pages into guestPages
// messages, optionally leaving out pages whose content is what the destination already
// holds (a page rewritten with the same bytes is reported dirty all the same: zeroing,
// idempotent stores). The destination's half is apply_guest_pages().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "base/result.h"
#include "dirty/bitmap.h"
#include "dirty/page_hasher.h"
#include "migration/schema/codec.h"

namespace mdevmig::engine {

class GuestPageSender {
 public:
  /// `memory` (whole pages of `page_size`) must outlive the sender. `skip_unchanged`:
  /// keep an XXH3 of every page as it was last sent and leave out dirty pages whose bytes
  /// hash the same (a false "unchanged" needs a 64-bit collision, DESIGN.md §5).
  GuestPageSender(std::span<const std::byte> memory, uint64_t page_size, bool skip_unchanged);

  struct Counts {
    uint64_t sent = 0;     ///< pages in the messages
    uint64_t skipped = 0;  ///< dirty pages left out, unchanged since they were last sent
  };
  using Sink = std::function<Result<void>(std::span<const std::byte>)>;

  /// Sends the pages set in `pages` (pages() bits) in messages of about `batch` bytes,
  /// each through `out`. A page is copied into the message before it is hashed, so the
  /// hash is of the bytes sent even if the page changes meanwhile.
  [[nodiscard]] Result<Counts> send(const dirty::Bitmap& pages, uint32_t iteration,
                                    std::size_t batch, schema::Encoder& enc, const Sink& out);

  [[nodiscard]] uint64_t pages() const { return memory_.size() / page_size_; }
  [[nodiscard]] bool skips_unchanged() const { return hasher_.has_value(); }

 private:
  std::span<const std::byte> memory_;
  uint64_t page_size_;
  std::optional<dirty::PageHasher> hasher_;
};

/// Copies a decoded guestPages message into `memory` (pages of `page_size`); a run
/// beyond it is a corrupt message and nothing of that run is written. Returns the
/// pages written.
[[nodiscard]] Result<uint64_t> apply_guest_pages(std::span<std::byte> memory, uint64_t page_size,
                                                 const schema::WireGuestPages& msg);

}  // namespace mdevmig::engine
