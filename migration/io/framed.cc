#include "migration/io/framed.h"

#include <cstring>

#include "migration/schema/codec.h"

namespace mdevmig::io {

Result<std::span<const std::byte>> FrameReader::next(
    std::optional<std::chrono::milliseconds> timeout) {
  // A whole message inside one of the reader's slots, and aligned, is handed out where
  // it lies (no copy): the common case for files read with slots larger than frames.
  auto head = MDEVMIG_TRY(reader_->peek(8 + 4 * schema::kMaxSegments, timeout));
  if (head.size() >= 8 && reinterpret_cast<uintptr_t>(head.data()) % 8 == 0) {
    const auto total = MDEVMIG_TRY(schema::frame_size(head, max_bytes_));
    if (total) {
      auto whole = MDEVMIG_TRY(reader_->peek(*total, timeout));
      if (whole.size() == *total) {
        reader_->consume(*total);
        consumed_ += *total;
        return whole;
      }
    }
  }
  // Otherwise the segment table first: 8 bytes, then the rest of the table if any.
  std::byte prefix[8 + 4 * schema::kMaxSegments];
  std::size_t have = MDEVMIG_TRY(reader_->read_full(std::span(prefix, 8), timeout));
  if (have == 0) return std::span<const std::byte>{};
  std::optional<std::size_t> total;
  while (have == 8 || (have > 8 && !total)) {
    total = MDEVMIG_TRY(schema::frame_size(std::span(prefix, have), max_bytes_));
    if (total) break;
    // The segment count is known (and bounded by frame_size): read the whole table.
    uint32_t count_minus_1;
    std::memcpy(&count_minus_1, prefix, 4);
    const std::size_t table = ((4 + 4 * (std::size_t{count_minus_1} + 1)) + 7) / 8 * 8;
    if (table <= have) break;
    have += MDEVMIG_TRY(reader_->read_full(std::span(prefix + have, table - have), timeout));
    if (have < table) break;
  }
  if (!total) {
    return Error::make_verdict(
        schema::kCorruptErrno, "read frame",
        "input ends inside a message header at byte " + std::to_string(consumed_ + have));
  }
  buf_.resize(*total / 8);
  auto* out = reinterpret_cast<std::byte*>(buf_.data());
  std::memcpy(out, prefix, have);
  const std::size_t got =
      MDEVMIG_TRY(reader_->read_full(std::span(out + have, *total - have), timeout));
  if (have + got < *total) {
    return Error::make_verdict(schema::kCorruptErrno, "read frame",
                               "input ends inside a message at byte " +
                                   std::to_string(consumed_ + have + got) + " (message of " +
                                   std::to_string(*total) + " bytes)");
  }
  consumed_ += *total;
  return std::span<const std::byte>(out, *total);
}

}  // namespace mdevmig::io
