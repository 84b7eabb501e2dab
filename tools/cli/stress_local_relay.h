// The relay of `mdevmig stress --mode local`: the stress process stands between the
// source and the destination of a migration and passes the stream on, applying the
// round's stream fault (the local injector of tools/stress's fault table).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "base/fd.h"
#include "tools/stress/faults.h"

namespace mdevmig::cli {

/// What the relay does to the source→destination bytes: flip the byte at `offset`
/// (kCorrupt), cut the stream there (kTruncate), or report the moment the stream
/// passes it (the other faults, which the caller fires).
class StreamFault {
 public:
  StreamFault(stress::FaultKind kind, uint64_t offset) : kind_(kind), offset_(offset) {}
  struct Step {
    std::size_t forward = 0;  ///< leading bytes of the data to pass on
    bool cut = false;         ///< then end the stream
    bool fire = false;        ///< the caller's fault is due now
  };
  /// The next bytes of the stream (modified in place for kCorrupt).
  [[nodiscard]] Step apply(std::span<std::byte> data);
  [[nodiscard]] bool fired() const { return fired_; }
  [[nodiscard]] uint64_t position() const { return pos_; }

 private:
  stress::FaultKind kind_;
  uint64_t offset_;
  uint64_t pos_ = 0;
  bool fired_ = false;
};

namespace local {

/// Relays src → dst through `fault` and dst → src as is, until either side ends or
/// nothing moves for `idle`; calls `fire` when a fault the caller fires is due.
void relay(UniqueFd src, UniqueFd dst, StreamFault& fault, const std::function<void()>& fire,
           std::chrono::milliseconds idle);

}  // namespace local
}  // namespace mdevmig::cli
