// The liburing data path (DESIGN.md §7, STYLE.md "io_uring"): ordered readers and
// writers over files, sockets, pipes and VFIO data_fds. Each owns a ring and a slot
// table of buffers; a buffer belongs to its slot until the last completion that uses
// it has been reaped. Queue depth is bounded by the slot count, short transfers are
// requeued for the rest, -EAGAIN (O_NONBLOCK fds) is retried behind a linked poll, and
// completions are reaped in batches.
//
// Two addressing modes:
//   - a file offset (>= 0): reads and writes carry explicit offsets and up to `depth`
//     of them are in flight at once (read-ahead, write-behind);
//   - kStream (-1): the fd's own position (sockets, pipes, data_fds, which have no
//     offsets: their read and write reject pread/pwrite with ESPIPE). Operations must
//     stay in order there, so one is in flight at a time while later slots fill.
// Sockets are driven with send/recv and MSG_NOSIGNAL: a vanished peer is an error
// (EPIPE, ECONNRESET), never SIGPIPE. With a Cancel in the options, the ring also polls
// its eventfd: once stop is requested, every call that would wait fails with EINTR.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "base/result.h"

namespace mdevmig::io {

class Cancel;

/// Offset argument for stream fds.
inline constexpr int64_t kStream = -1;

/// Counters of one reader or writer.
struct IoStats {
  uint64_t bytes = 0;            ///< transferred
  uint64_t ops = 0;              ///< read/write SQEs submitted (requeues included)
  uint64_t short_transfers = 0;  ///< completions that moved less than asked
  uint64_t eagain_retries = 0;   ///< -EAGAIN (or interrupted) completions retried
  uint64_t reap_batches = 0;     ///< completion batches reaped
  uint64_t max_in_flight = 0;    ///< most SQEs in flight at once
};

/// Options shared by readers and writers.
struct IoOptions {
  unsigned depth = 8;                 ///< slots (and so the bound on the queue depth)
  std::size_t slot_bytes = 1u << 20;  ///< buffer per slot
  std::string name;                   ///< for errors: "save file", "data_fd"
  const Cancel* cancel = nullptr;     ///< not owned; waits fail with EINTR once it fires
};

class Engine;

/// Writes a byte sequence to an fd, in order, asynchronously: write() copies into the
/// slot being filled and submits it when full; flush() waits for everything.
class Writer {
 public:
  /// `offset`: where the first byte goes, or kStream.
  [[nodiscard]] static Result<Writer> create(int fd, int64_t offset, IoOptions options = {});
  ~Writer();
  Writer(Writer&&) noexcept;
  Writer& operator=(Writer&&) noexcept;

  /// Queues `data`; may wait for earlier writes to free a slot. An error of any earlier
  /// write is returned here or by flush().
  [[nodiscard]] Result<void> write(std::span<const std::byte> data);
  /// Submits the partly filled slot and waits until every byte is written.
  [[nodiscard]] Result<void> flush();
  /// Bytes accepted by write() so far.
  [[nodiscard]] uint64_t queued_bytes() const noexcept;
  [[nodiscard]] const IoStats& stats() const noexcept;

 private:
  explicit Writer(std::unique_ptr<Engine> e);
  std::unique_ptr<Engine> e_;
};

/// Reads an fd in order, asynchronously: file mode keeps `depth` reads ahead; stream
/// mode keeps one read in flight and up to `depth` filled slots ahead of the consumer.
class Reader {
 public:
  [[nodiscard]] static Result<Reader> create(int fd, int64_t offset, IoOptions options = {});
  ~Reader();
  Reader(Reader&&) noexcept;
  Reader& operator=(Reader&&) noexcept;

  /// The next bytes (at most `max`): a non-empty span valid until the next call, or an
  /// empty span at end of file. A read error (e.g. ENOMSG, the v2 data_fd's "no data
  /// now" in pre-copy) is returned once, after the data read before it; calling again
  /// reads on. `timeout` bounds the wait (ETIMEDOUT).
  [[nodiscard]] Result<std::span<const std::byte>> next(
      std::size_t max = SIZE_MAX, std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  /// Like next(), without consuming: the bytes stay until consume() takes (some of)
  /// them. The span is within one slot, so it may be shorter than what the fd has.
  [[nodiscard]] Result<std::span<const std::byte>> peek(
      std::size_t max, std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  /// Consumes `n` bytes of what peek() returned last.
  void consume(std::size_t n);
  /// Fills `out` completely unless the file ends first; returns the bytes read.
  [[nodiscard]] Result<std::size_t> read_full(
      std::span<std::byte> out, std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  /// Whether next() would return without waiting (data, an error or end of file).
  [[nodiscard]] bool ready();
  /// Stream mode, for an fd whose end can be temporary (a v2 data_fd answers 0 or
  /// `transient_errnum` in PRE_COPY for "nothing now", and goes on after STOP_COPY):
  /// waits for every read submitted so far, keeps the bytes they read, and forgets an
  /// end they reported, delivered or not (end of file, or the error `transient_errnum`),
  /// so that next() reads the fd on. Any other error stays to be reported.
  [[nodiscard]] Result<void> settle(int transient_errnum);
  [[nodiscard]] const IoStats& stats() const noexcept;

 private:
  explicit Reader(std::unique_ptr<Engine> e);
  std::unique_ptr<Engine> e_;
};

}  // namespace mdevmig::io
