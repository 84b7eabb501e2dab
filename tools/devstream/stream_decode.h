// Decoding mdevmig's device state stream (the records of <linux/mdevmig.h>, checked
// against vendor/records.h) for `mdevmig inspect`: read-only, incremental over chunks,
// hostile-input safe (lengths are checked before use; page payloads are hashed, never
// buffered). Our device's format, so not part of the device-agnostic engine.
#pragma once

#include <linux/mdevmig.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dirty/bitmap.h"
#include "migration/schema/codec.h"

namespace mdevmig::devstream {

struct StreamSummary {
  std::optional<mdevmig_rec_compat> compat;
  std::optional<mdevmig_rec_config> config;
  std::optional<mdevmig_rec_regs> regs;
  std::optional<mdevmig_rec_engine> engine;
  std::optional<mdevmig_rec_irq> irq;
  uint64_t records = 0;
  uint64_t page_records = 0;
  uint64_t pages_precopy = 0;  ///< pages carried in pre-copy chunks (repeats counted)
  uint64_t pages_stopcopy = 0;
  uint64_t unique_pages = 0;  ///< distinct device pages carried
  uint64_t skipped_optional = 0;
  bool ended = false;
  uint64_t bytes = 0;
  /// The first problem found (empty: none). Decoding stops there.
  std::string problem;
};

class StreamDecoder {
 public:
  StreamDecoder();
  ~StreamDecoder();
  StreamDecoder(const StreamDecoder&) = delete;
  StreamDecoder& operator=(const StreamDecoder&) = delete;

  /// Consumes the next bytes of the stream, produced in `phase`.
  void feed(std::span<const std::byte> data, schema::Phase phase);
  /// The summary; flags a stream that ended before its END record.
  [[nodiscard]] StreamSummary finish();

 private:
  struct Hash;
  void fail(std::string what);
  void start_payload();
  void end_record();

  StreamSummary s_;
  std::byte hdr_[sizeof(mdevmig_rec_hdr)] = {};
  std::size_t hdr_fill_ = 0;
  mdevmig_rec_hdr cur_{};
  uint64_t payload_fill_ = 0;
  std::vector<std::byte> small_;  // payload of a known non-page record
  std::byte pages_hdr_[sizeof(mdevmig_rec_pages)] = {};
  std::unique_ptr<Hash> hash_;
  schema::Phase phase_ = schema::Phase::kInvalid;
  std::optional<dirty::Bitmap> seen_;
};

/// The fields of a REGS record, named, for display.
[[nodiscard]] std::vector<std::pair<std::string, uint64_t>> regs_fields(const mdevmig_rec_regs& r);

}  // namespace mdevmig::devstream
