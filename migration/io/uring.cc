#include "migration/io/uring.h"

#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <vector>

#include "migration/io/cancel.h"

namespace mdevmig::io {

namespace {
// user_data of the poll SQE linked in front of a retried operation, of cancels, and of
// the poll on a Cancel's eventfd.
constexpr uint64_t kPollTag = ~uint64_t{0};
constexpr uint64_t kCancelTag = ~uint64_t{0} - 1;
constexpr uint64_t kStopPollTag = ~uint64_t{0} - 2;
constexpr unsigned kReapBatch = 32;
}  // namespace

// The machinery both Reader and Writer use: a ring, a slot table, the requeue rules.
class Engine {
 public:
  enum class Kind { kRead, kWrite };
  enum class State { kFree, kFilling, kPending, kInFlight, kReady };

  struct Slot {
    std::unique_ptr<std::byte[]> buf;
    std::size_t len = 0;   // bytes to transfer (write) / capacity asked (read)
    std::size_t done = 0;  // bytes transferred so far
    std::size_t pos = 0;   // reader: bytes handed to the consumer
    int64_t offset = 0;    // file mode: offset of buf[0]
    int err = 0;           // reader: errno the read ended with
    bool eof = false;      // reader: the read hit end of file
    State state = State::kFree;
  };

  Engine(Kind kind, int fd, int64_t offset, IoOptions o)
      : kind_(kind),
        fd_(fd),
        stream_(offset < 0),
        next_offset_(offset < 0 ? 0 : offset),
        opt_(std::move(o)) {}

  ~Engine() {
    if (!ring_ok_) return;
    closing_ = true;
    // The kernel may still write into (or read from) slot buffers: cancel what is in
    // flight and reap every completion before the buffers go.
    if (in_flight_ > 0) {
      for (unsigned i = 0; i < slots_.size(); ++i) {
        if (slots_[i].state != State::kInFlight) continue;
        io_uring_sqe* sqe = get_sqe();
        if (sqe == nullptr) continue;
        io_uring_prep_cancel64(sqe, i, 0);
        io_uring_sqe_set_data64(sqe, kCancelTag);
      }
      while (in_flight_ > 0) {
        if (!reap(true, std::nullopt, false).ok()) break;
      }
    }
    io_uring_queue_exit(&ring_);
  }

  Result<void> init() {
    if (opt_.depth == 0 || opt_.slot_bytes == 0) {
      return Error::make(EINVAL, "io_uring setup", opt_.name + ": depth and slot size must be > 0");
    }
    const int rc = io_uring_queue_init(opt_.depth * 2 + 4, &ring_, 0);
    if (rc < 0) return Error::make(-rc, "io_uring_queue_init", opt_.name);
    ring_ok_ = true;
    struct stat st {};
    socket_ = ::fstat(fd_, &st) == 0 && S_ISSOCK(st.st_mode);
    slots_.resize(opt_.depth);
    for (Slot& s : slots_) s.buf.reset(new std::byte[opt_.slot_bytes]);
    if (opt_.cancel != nullptr) {
      // Wakes any wait of this ring once stop is requested (the completion only counts
      // as a wake-up; reap() looks at the request itself).
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_poll_add(sqe, opt_.cancel->fd(), POLLIN);
      io_uring_sqe_set_data64(sqe, kStopPollTag);
    }
    return ok();
  }

  // ---- submission and completion --------------------------------------------------

  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void prep_op(io_uring_sqe* sqe, unsigned i) {
    Slot& s = slots_[i];
    const uint64_t off = stream_ ? ~uint64_t{0} : static_cast<uint64_t>(s.offset) + s.done;
    const auto n = static_cast<unsigned>(s.len - s.done);
    if (socket_) {
      if (kind_ == Kind::kRead) {
        io_uring_prep_recv(sqe, fd_, s.buf.get() + s.done, n, MSG_NOSIGNAL);
      } else {
        io_uring_prep_send(sqe, fd_, s.buf.get() + s.done, n, MSG_NOSIGNAL);
      }
    } else if (kind_ == Kind::kRead) {
      io_uring_prep_read(sqe, fd_, s.buf.get() + s.done, n, off);
    } else {
      io_uring_prep_write(sqe, fd_, s.buf.get() + s.done, n, off);
    }
    io_uring_sqe_set_data64(sqe, i);
  }

  // Queues the (rest of the) transfer of slot i; `after_poll` links a readiness poll in
  // front (the retry of an -EAGAIN).
  void submit_op(unsigned i, bool after_poll = false) {
    if (after_poll) {
      io_uring_sqe* poll = get_sqe();
      MDEVMIG_CHECK(poll != nullptr);
      io_uring_prep_poll_add(poll, fd_, kind_ == Kind::kRead ? POLLIN : POLLOUT);
      io_uring_sqe_set_data64(poll, kPollTag);
      poll->flags |= IOSQE_IO_LINK;
    }
    io_uring_sqe* sqe = get_sqe();
    MDEVMIG_CHECK(sqe != nullptr);
    prep_op(sqe, i);
    slots_[i].state = State::kInFlight;
    ++in_flight_;
    ++stats_.ops;
    stats_.max_in_flight = std::max<uint64_t>(stats_.max_in_flight, in_flight_);
  }

  // Submits queued SQEs and reaps a batch of completions, waiting for at least one if
  // `wait`. `interruptible`: fail with EINTR once stop is requested (before waiting and
  // after); drains that must reap what is in flight pass false.
  Result<void> reap(bool wait, std::optional<std::chrono::milliseconds> timeout,
                    bool interruptible = true) {
    interruptible = interruptible && opt_.cancel != nullptr;
    if (interruptible && opt_.cancel->requested())
      return opt_.cancel->error(op_name() + " (" + opt_.name + ")");
    int rc;
    if (wait && timeout) {
      __kernel_timespec ts{};
      ts.tv_sec = timeout->count() / 1000;
      ts.tv_nsec = (timeout->count() % 1000) * 1000000;
      io_uring_cqe* cqe = nullptr;
      rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      if (rc == -ETIME) return Error::make(ETIMEDOUT, op_name(), opt_.name);
    } else if (wait) {
      rc = io_uring_submit_and_wait(&ring_, 1);
    } else {
      rc = io_uring_submit(&ring_);
    }
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      return Error::make(-rc, "io_uring_submit", opt_.name);
    }
    io_uring_cqe* cqes[kReapBatch];
    for (;;) {
      const unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kReapBatch);
      if (n == 0) break;
      ++stats_.reap_batches;
      for (unsigned k = 0; k < n; ++k) complete(io_uring_cqe_get_data64(cqes[k]), cqes[k]->res);
      io_uring_cq_advance(&ring_, n);
      if (n < kReapBatch) break;
    }
    if (interruptible && opt_.cancel->requested())
      return opt_.cancel->error(op_name() + " (" + opt_.name + ")");
    return ok();
  }

  void complete(uint64_t tag, int res) {
    // The operations report for themselves; a stop request is read from the Cancel.
    if (tag == kPollTag || tag == kCancelTag || tag == kStopPollTag) return;
    const auto i = static_cast<unsigned>(tag);
    MDEVMIG_CHECK(i < slots_.size() && slots_[i].state == State::kInFlight,
                  "completion for slot %u", i);
    Slot& s = slots_[i];
    --in_flight_;
    if (closing_) {
      s.state = State::kFree;
      return;
    }
    if (res == -EAGAIN || res == -ECANCELED || res == -EINTR) {
      // ECANCELED: the linked poll failed (e.g. interrupted); try the pair again.
      ++stats_.eagain_retries;
      submit_op(i, res != -EINTR);
      return;
    }
    if (kind_ == Kind::kWrite) {
      complete_write(i, res);
    } else {
      complete_read(i, res);
    }
  }

  void complete_write(unsigned i, int res) {
    Slot& s = slots_[i];
    if (res <= 0) {
      if (!error_) {
        error_ = res < 0 ? Error::make(-res, op_name(), context(s))
                         : Error::make(EIO, op_name(), context(s) + ": wrote 0 bytes");
      }
      finish_write_slot(i);
      return;
    }
    s.done += static_cast<std::size_t>(res);
    stats_.bytes += static_cast<uint64_t>(res);
    if (s.done < s.len) {
      ++stats_.short_transfers;
      submit_op(i);
      return;
    }
    finish_write_slot(i);
  }

  void finish_write_slot(unsigned i) {
    slots_[i].state = State::kFree;
    auto it = std::find(order_.begin(), order_.end(), i);
    MDEVMIG_CHECK(it != order_.end());
    order_.erase(it);
    // Stream mode: the next queued slot goes now (after an error nothing more goes).
    if (stream_ && !error_ && !order_.empty() && slots_[order_.front()].state == State::kPending) {
      submit_op(order_.front());
    }
  }

  void complete_read(unsigned i, int res) {
    Slot& s = slots_[i];
    if (res < 0) {
      s.err = -res;
      s.state = State::kReady;
      return;
    }
    if (res == 0) {
      s.eof = true;
      s.state = State::kReady;
      return;
    }
    s.done += static_cast<std::size_t>(res);
    stats_.bytes += static_cast<uint64_t>(res);
    if (s.done < s.len) {
      ++stats_.short_transfers;
      if (!stream_) {  // a file: ask for the rest (0 next means end of file)
        submit_op(i);
        return;
      }
    }
    s.state = State::kReady;
    if (stream_ && !settling_) arm_reads();
  }

  std::string op_name() const { return kind_ == Kind::kRead ? "io_uring read" : "io_uring write"; }
  std::string context(const Slot& s) const {
    return opt_.name +
           (stream_ ? "" : " offset " + std::to_string(s.offset + static_cast<int64_t>(s.done)));
  }

  // ---- writer ------------------------------------------------------------------------

  Result<void> write(std::span<const std::byte> data) {
    while (!data.empty()) {
      if (error_) return *error_;
      if (fill_ < 0) {
        fill_ = MDEVMIG_TRY(acquire_free());
        slots_[fill_].state = State::kFilling;
        slots_[fill_].len = 0;
        slots_[fill_].done = 0;
      }
      Slot& s = slots_[fill_];
      const std::size_t n = std::min(data.size(), opt_.slot_bytes - s.len);
      std::memcpy(s.buf.get() + s.len, data.data(), n);
      s.len += n;
      queued_ += n;
      data = data.subspan(n);
      if (s.len == opt_.slot_bytes) submit_fill();
    }
    if (error_) return *error_;
    return ok();
  }

  Result<int> acquire_free() {
    for (;;) {
      for (unsigned i = 0; i < slots_.size(); ++i) {
        if (slots_[i].state == State::kFree) return static_cast<int>(i);
      }
      MDEVMIG_TRY(reap(true, std::nullopt));
      if (error_) return *error_;
    }
  }

  void submit_fill() {
    const auto i = static_cast<unsigned>(fill_);
    fill_ = -1;
    Slot& s = slots_[i];
    s.offset = next_offset_;
    next_offset_ += static_cast<int64_t>(s.len);
    s.state = State::kPending;
    order_.push_back(i);
    if (!stream_ || order_.size() == 1) submit_op(i);
    io_uring_submit(&ring_);
  }

  Result<void> flush() {
    if (fill_ >= 0 && slots_[fill_].len > 0) submit_fill();
    while (!order_.empty() && !error_) MDEVMIG_TRY(reap(true, std::nullopt));
    // After an error, wait for what is still in flight (its buffers are ours).
    while (in_flight_ > 0) MDEVMIG_TRY(reap(true, std::nullopt, false));
    if (error_) return *error_;
    return ok();
  }

  // ---- reader ------------------------------------------------------------------------

  // Keeps reads going: file mode fills every free slot; stream mode has one in flight
  // unless an error or end of file waits for the consumer.
  void arm_reads() {
    if (eof_seen_) return;
    for (unsigned i = 0; i < slots_.size(); ++i) {
      if (slots_[i].state != State::kFree) continue;
      if (stream_) {
        if (in_flight_ > 0) return;
        for (unsigned j : order_) {
          if (slots_[j].err != 0 || slots_[j].eof) return;
        }
      }
      Slot& s = slots_[i];
      s.len = opt_.slot_bytes;
      s.done = s.pos = 0;
      s.err = 0;
      s.eof = false;
      s.offset = next_offset_;
      if (!stream_) next_offset_ += static_cast<int64_t>(s.len);
      order_.push_back(i);
      submit_op(i);
      if (stream_) break;
    }
    io_uring_submit(&ring_);
  }

  Result<std::span<const std::byte>> next(std::size_t max,
                                          std::optional<std::chrono::milliseconds> timeout) {
    auto s = peek(max, timeout);
    if (s.ok() && !s->empty()) consume(s->size());
    return s;
  }

  void consume(std::size_t n) {
    Slot& s = slots_[order_.front()];
    MDEVMIG_CHECK(n <= s.done - s.pos);
    s.pos += n;
  }

  // The front slot's unconsumed bytes (at most `max`), waiting for them; the slot stays
  // the consumer's until the next call.
  Result<std::span<const std::byte>> peek(std::size_t max,
                                          std::optional<std::chrono::milliseconds> timeout) {
    for (;;) {
      if (order_.empty()) {
        if (eof_seen_) return std::span<const std::byte>{};
        arm_reads();
      }
      Slot& s = slots_[order_.front()];
      if (s.state != State::kReady) {
        MDEVMIG_TRY(reap(true, timeout));
        continue;
      }
      if (s.pos < s.done)
        return std::span<const std::byte>(s.buf.get() + s.pos, std::min(max, s.done - s.pos));
      // The slot is used up: free it and report how it ended.
      const int err = s.err;
      const bool eof = s.eof;
      const int64_t offset = s.offset;
      s.state = State::kFree;
      order_.pop_front();
      if (eof) {
        eof_seen_ = true;
        // File mode: later slots hold reads past the end; wait for them and drop them.
        drop_ahead(next_offset_);
        return std::span<const std::byte>{};
      }
      if (err != 0) {
        // Deliver once; file mode re-issues the reads after it when called again.
        if (!stream_) drop_ahead(offset);
        return Error::make(err, op_name(), opt_.name);
      }
      arm_reads();
    }
  }

  void drop_ahead(int64_t resume_offset) {
    while (in_flight_ > 0) {
      if (!reap(true, std::nullopt, false).ok()) break;
    }
    for (unsigned i : order_) slots_[i].state = State::kFree;
    order_.clear();
    next_offset_ = resume_offset;
  }

  Result<void> settle(int transient) {
    MDEVMIG_CHECK(stream_ && kind_ == Kind::kRead);
    settling_ = true;
    while (in_flight_ > 0) {
      auto r = reap(true, std::nullopt);
      if (!r.ok()) {
        settling_ = false;
        return r;
      }
    }
    settling_ = false;
    // In stream mode a read that ends (0 or an error) holds no data and no read follows
    // it, so only the last slot can hold an end.
    if (!order_.empty()) {
      Slot& s = slots_[order_.back()];
      if (s.state == State::kReady && s.pos == s.done && (s.eof || s.err == transient)) {
        s.state = State::kFree;
        order_.pop_back();
      }
    }
    eof_seen_ = false;
    return ok();
  }

  bool ready() {
    (void)reap(false, std::nullopt);
    // A slot the consumer has used up stays at the front until it comes back.
    for (unsigned i : order_) {
      const Slot& s = slots_[i];
      if (s.state != State::kReady) return false;
      if (s.pos < s.done || s.err != 0 || s.eof) return true;
    }
    return eof_seen_;
  }

  Kind kind_;
  int fd_;
  bool stream_;
  int64_t next_offset_;
  IoOptions opt_;
  io_uring ring_{};
  bool ring_ok_ = false;
  bool socket_ = false;
  bool closing_ = false;
  std::vector<Slot> slots_;
  std::deque<unsigned> order_;  // slots in transfer order
  unsigned in_flight_ = 0;
  std::optional<Error> error_;  // writer: the first failure (sticky)
  int fill_ = -1;               // writer: slot being filled
  uint64_t queued_ = 0;
  bool eof_seen_ = false;  // reader
  bool settling_ = false;  // reader: settle() waits; completions arm no new reads
  IoStats stats_;
};

// ---- Writer ----------------------------------------------------------------------------

Writer::Writer(std::unique_ptr<Engine> e) : e_(std::move(e)) {}
Writer::~Writer() = default;
Writer::Writer(Writer&&) noexcept = default;
Writer& Writer::operator=(Writer&&) noexcept = default;

Result<Writer> Writer::create(int fd, int64_t offset, IoOptions options) {
  auto e = std::make_unique<Engine>(Engine::Kind::kWrite, fd, offset, std::move(options));
  MDEVMIG_TRY(e->init());
  return Writer(std::move(e));
}

Result<void> Writer::write(std::span<const std::byte> data) { return e_->write(data); }
Result<void> Writer::flush() { return e_->flush(); }
uint64_t Writer::queued_bytes() const noexcept { return e_->queued_; }
const IoStats& Writer::stats() const noexcept { return e_->stats_; }

// ---- Reader ----------------------------------------------------------------------------

Reader::Reader(std::unique_ptr<Engine> e) : e_(std::move(e)) {}
Reader::~Reader() = default;
Reader::Reader(Reader&&) noexcept = default;
Reader& Reader::operator=(Reader&&) noexcept = default;

Result<Reader> Reader::create(int fd, int64_t offset, IoOptions options) {
  auto e = std::make_unique<Engine>(Engine::Kind::kRead, fd, offset, std::move(options));
  MDEVMIG_TRY(e->init());
  return Reader(std::move(e));
}

Result<std::span<const std::byte>> Reader::next(std::size_t max,
                                                std::optional<std::chrono::milliseconds> timeout) {
  return e_->next(max, timeout);
}

Result<std::size_t> Reader::read_full(std::span<std::byte> out,
                                      std::optional<std::chrono::milliseconds> timeout) {
  std::size_t done = 0;
  while (done < out.size()) {
    auto got = MDEVMIG_TRY(e_->next(out.size() - done, timeout));
    if (got.empty()) break;
    std::memcpy(out.data() + done, got.data(), got.size());
    done += got.size();
  }
  return done;
}

Result<std::span<const std::byte>> Reader::peek(std::size_t max,
                                                std::optional<std::chrono::milliseconds> timeout) {
  return e_->peek(max, timeout);
}

void Reader::consume(std::size_t n) { e_->consume(n); }

bool Reader::ready() { return e_->ready(); }
Result<void> Reader::settle(int transient_errnum) { return e_->settle(transient_errnum); }
const IoStats& Reader::stats() const noexcept { return e_->stats_; }

}  // namespace mdevmig::io
