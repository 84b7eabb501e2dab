#include "migration/engine/session.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <cstring>
#include <deque>
#include <thread>

#include "migration/engine/guest_pages.h"
#include "migration/engine/identity.h"
#include "migration/engine/savefile.h"
#include "migration/io/cancel.h"
#include "migration/io/framed.h"
#include "migration/io/uring.h"

namespace mdevmig::engine {
namespace {

using Clock = std::chrono::steady_clock;
using schema::WireMessage;

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The policy's reason for a switchover, with the figures that explain a forced one:
// what dirty rate would have converged, or would have fitted the target.
std::string explain(const Decision& d, const PolicyInput& in, const PolicyConfig& cfg) {
  std::string why = d.reason;
  char buf[200] = "";
  const double mib = 1 << 20;
  if (d.fitting_rate_bps == 0) {
    std::snprintf(buf, sizeof(buf), "; fixed cost %.0f ms, target %.0f ms",
                  in.switchover_fixed_s * 1e3, cfg.downtime_target_s * 1e3);
  } else if (!d.converging) {
    std::snprintf(buf, sizeof(buf),
                  "; dirtied %.1f MiB/s, sent %.1f MiB/s: pre-copy converges below %.1f MiB/s",
                  in.dirty_rate_bps / mib, in.bandwidth_bps / mib, in.bandwidth_bps / mib);
  } else if (d.fitting_rate_bps > 0) {
    std::snprintf(
        buf, sizeof(buf),
        "; estimated downtime %.0f ms over the %.0f ms target: fits below about %.1f MiB/s dirtied",
        d.estimated_downtime_s * 1e3, cfg.downtime_target_s * 1e3, d.fitting_rate_bps / mib);
  }
  return why + buf;
}

struct Xxh3Deleter {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};
using Xxh3 = std::unique_ptr<XXH3_state_t, Xxh3Deleter>;
Xxh3 new_xxh3() {
  Xxh3 s(XXH3_createState());
  MDEVMIG_CHECK(s != nullptr);
  XXH3_64bits_reset(s.get());
  return s;
}

// Both directions of a connection: messages out through a liburing writer, whole
// messages in through a liburing reader and the framing reader.
class Wire {
 public:
  // Every wait on `sock` fails with EINTR once `cancel` (if any) fires.
  static Result<std::unique_ptr<Wire>> open(int sock, const std::string& name,
                                            const io::Cancel* cancel) {
    auto w = std::unique_ptr<Wire>(new Wire());
    w->name_ = name;
    w->writer_.emplace(MDEVMIG_TRY(
        io::Writer::create(sock, io::kStream, {4, 1u << 20, name + " (send)", cancel})));
    w->reader_.emplace(MDEVMIG_TRY(
        io::Reader::create(sock, io::kStream, {4, 1u << 20, name + " (receive)", cancel})));
    w->frames_.emplace(*w->reader_, schema::kMaxFrameBytes);
    return w;
  }

  Result<void> send(std::span<const std::byte> msg) {
    bytes_ += msg.size();
    return writer_->write(msg);
  }
  Result<void> flush() { return writer_->flush(); }

  // The next message; a closed connection is ECONNRESET, a peer's error message becomes
  // its own error.
  Result<WireMessage> recv(uint32_t page_size, std::chrono::milliseconds timeout) {
    auto bytes = frames_->next(timeout);
    if (!bytes.ok()) return std::move(bytes.error()).add_context(name_);
    if (bytes->empty())
      return Error::make(ECONNRESET, "receive", name_ + ": peer closed the connection");
    auto m = schema::decode_wire(*bytes, page_size);
    if (!m.ok()) return std::move(m.error()).add_context(name_);
    if (m->kind == WireMessage::Kind::kError) return peer_error(m->error);
    return m;
  }

  // Whether the peer said something (mid-stream, only an error is expected).
  bool peer_spoke() { return reader_->ready(); }

  static Error peer_error(const schema::WireError& e) {
    int errnum = EIO;
    switch (e.code) {
      case schema::ErrorCode::kIncompatible:
        errnum = schema::kIncompatibleErrno;
        break;
      case schema::ErrorCode::kCorrupt:
        errnum = schema::kCorruptErrno;
        break;
      case schema::ErrorCode::kCancelled:
        errnum = ECANCELED;
        break;
      default:
        break;
    }
    // The peer's own one-line message: no system call of ours failed.
    return Error::make_verdict(errnum, "peer reported an error", e.message);
  }

  static schema::ErrorCode code_for(const Error& e) {
    if (e.errnum == schema::kIncompatibleErrno) return schema::ErrorCode::kIncompatible;
    if (e.errnum == schema::kCorruptErrno) return schema::ErrorCode::kCorrupt;
    if (e.errnum == ECANCELED || e.errnum == EINTR) return schema::ErrorCode::kCancelled;
    return schema::ErrorCode::kDevice;
  }

  // Best effort: the connection may be what failed.
  void try_send_error(const Error& e) {
    if (!send(enc.wire_error(code_for(e), e.message())).ok()) return;
    (void)flush();
  }

  uint64_t bytes() const { return bytes_; }
  schema::Encoder enc{1u << 20};

 private:
  Wire() = default;
  std::string name_;
  std::optional<io::Writer> writer_;
  std::optional<io::Reader> reader_;
  std::optional<io::FrameReader> frames_;
  uint64_t bytes_ = 0;
};

uint32_t page_size_of(const GuestMemory* g) {
  return g ? static_cast<uint32_t>(g->page_size()) : 0;
}

schema::WireHello hello_for(schema::Role role, const Channel& ch, const schema::DeviceIdentity& id,
                            const GuestMemory* guest) {
  schema::WireHello h;
  h.role = role;
  h.tool_version = kToolVersion;
  h.device = id;
  h.channel = ch.kind();
  h.precopy_sync = true;
  if (guest) {
    h.guest_mem_bytes = guest->size();
    h.guest_iova = guest->iova();
    h.page_size = static_cast<uint32_t>(guest->page_size());
  }
  return h;
}

Result<void> check_guest(const schema::WireHello& peer, const GuestMemory* guest) {
  const uint64_t mine = guest ? guest->size() : 0;
  if (peer.guest_mem_bytes != mine ||
      (guest && (peer.guest_iova != guest->iova() || peer.page_size != guest->page_size()))) {
    return Error::make_verdict(schema::kIncompatibleErrno, "compatibility check",
                               "guest memory " + std::to_string(peer.guest_mem_bytes) +
                                   " bytes vs " + std::to_string(mine));
  }
  return ok();
}

}  // namespace

// ---- guest memory ------------------------------------------------------------------------

Result<GuestMemory> GuestMemory::create(const vfio::Container& container, uint64_t iova,
                                        uint64_t bytes, bool track) {
  GuestMemory g;
  g.container_ = &container;
  g.iova_ = iova;
  if (track) {
    auto info = container.iommu_info();
    if (info.ok() && info->dirty_tracking && info->dirty_tracking->pgsize_bitmap != 0) {
      g.page_size_ = uint64_t{1} << std::countr_zero(info->dirty_tracking->pgsize_bitmap);
    }
  }
  if (bytes == 0 || bytes % g.page_size_ != 0) {
    return Error::make(EINVAL, "guest memory", std::to_string(bytes) + " bytes is not whole pages");
  }
  g.mem_ = MDEVMIG_TRY(vfio::Mapping::anonymous(bytes));
  MDEVMIG_TRY(container.map_dma(iova, g.mem_.data(), bytes, vfio::DmaAccess::kReadWrite));
  g.mapped_ = true;
  g.cpu_dirty_.emplace(g.pages());
  if (track) {
    MDEVMIG_TRY(container.start_dirty_tracking());
    g.tracking_ = true;
  }
  return g;
}

GuestMemory::GuestMemory(GuestMemory&& o) noexcept
    : container_(o.container_),
      mem_(std::move(o.mem_)),
      iova_(o.iova_),
      page_size_(o.page_size_),
      tracking_(std::exchange(o.tracking_, false)),
      mapped_(std::exchange(o.mapped_, false)),
      cpu_lock_(std::move(o.cpu_lock_)),
      cpu_dirty_(std::move(o.cpu_dirty_)) {}

GuestMemory::~GuestMemory() {
  if (tracking_) (void)container_->stop_dirty_tracking();
  if (mapped_) (void)container_->unmap_dma(iova_, mem_.size());
}

Result<dirty::Bitmap> GuestMemory::collect_dirty() {
  dirty::Bitmap out(pages());
  if (tracking_) out = MDEVMIG_TRY(container_->dirty_bitmap(iova_, size(), page_size_));
  std::lock_guard lock(*cpu_lock_);
  out |= *cpu_dirty_;
  cpu_dirty_->clear_all();
  return out;
}

void GuestMemory::mark_cpu_dirty(uint64_t offset, uint64_t len) {
  if (len == 0 || offset >= size()) return;
  len = std::min(len, size() - offset);
  std::lock_guard lock(*cpu_lock_);
  const uint64_t first = offset / page_size_;
  cpu_dirty_->set_range(first, (offset + len - 1) / page_size_ - first + 1);
}

// ---- source ---------------------------------------------------------------------------------

Result<MigrationReport> run_source(Channel& ch, const schema::DeviceIdentity& id,
                                   GuestMemory* guest, int sock, const SourceOptions& opt) {
  const auto t0 = Clock::now();
  MigrationReport rep;
  rep.channel = ch.kind();
  rep.downtime_target_s = std::max(0.0, opt.policy.downtime_target_s);
  auto wire = MDEVMIG_TRY(Wire::open(sock, "migration connection", opt.cancel));
  const uint64_t gps = guest ? guest->page_size() : 0;

  // Hello: nothing is started before the destination agreed.
  const auto t_hello = Clock::now();
  MDEVMIG_TRY(wire->send(wire->enc.wire_hello(hello_for(schema::Role::kSource, ch, id, guest))));
  MDEVMIG_TRY(wire->flush());
  WireMessage reply = MDEVMIG_TRY(wire->recv(page_size_of(guest), opt.peer_timeout));
  const double round_trip_s = since(t_hello);
  if (reply.kind != WireMessage::Kind::kHello || reply.hello.role != schema::Role::kDestination) {
    return Error::make_verdict(schema::kCorruptErrno, "migration handshake",
                               "peer did not answer with a hello");
  }
  MDEVMIG_TRY(check_compatible(id, reply.hello.device));
  MDEVMIG_TRY(check_guest(reply.hello, guest));
  // An older destination does not answer syncs: the estimate then assumes its finish
  // costs what the source's own state change costs, and the pre-copy rate stands in for
  // the stop-copy rate.
  const bool sync = reply.hello.precopy_sync;
  rep.precopy_sync = sync;
  // Syncs go out every opt.sync_step_bytes of pre-copy and at the end of passes, and the
  // source goes on; answers come in order and are read whenever the destination said
  // something (between chunks, between passes).
  uint64_t sync_seq = 0, answered = 0;
  // Pre-copy bytes sent (device stream and guest pages), those up to the last sync, and
  // those the destination's device took by its last answer (all counted as the
  // destination counts them).
  uint64_t sent_total = 0, synced_total = 0, confirmed = 0;
  // When the first send after the last sync began (what is in flight is reckoned from
  // there, or from the last answer if later).
  std::optional<Clock::time_point> t_unsynced;
  std::deque<Clock::time_point> unanswered;  // first send of each sync not yet answered
  Clock::time_point t_answer{};
  // The answers of the current stretch of sending without a pause, on the source's clock
  // from t_marks (the last few: the rate follows the machine's load), and their rate.
  const auto t_marks = Clock::now();
  std::vector<Delivery> marks;
  double arrival = 0;  // delivery_rate(marks)
  auto mark = [&](Clock::time_point t, uint64_t loaded) {
    marks.push_back({std::chrono::duration<double>(t - t_marks).count(), loaded});
    if (marks.size() > 33) marks.erase(marks.begin());
    // A new stretch measures nothing until its second mark: the last rate stands.
    if (const double r = delivery_rate(marks); r > 0) arrival = r;
  };
  // A message from the destination during pre-copy: an answer to a sync, or its error
  // (recv() returns that as an error of its own).
  auto take_answer = [&](const WireMessage& m) -> Result<void> {
    if (!sync || m.kind != WireMessage::Kind::kSynced) {
      return Error::make(
          EPROTO, "migration",
          std::string("unexpected ") + schema::wire_kind_name(m.kind) + " from the destination");
    }
    if (m.synced.seq != answered + 1 || m.synced.seq > sync_seq ||
        m.synced.loaded_bytes < confirmed) {
      return Error::make_verdict(schema::kCorruptErrno, "migration",
                                 "destination answered sync " + std::to_string(m.synced.seq) +
                                     " (" + std::to_string(m.synced.loaded_bytes) +
                                     " bytes loaded), expected " + std::to_string(answered + 1) +
                                     " (" + std::to_string(confirmed) + " or more)");
    }
    t_answer = Clock::now();
    answered = m.synced.seq;
    if (!unanswered.empty()) unanswered.pop_front();
    confirmed = m.synced.loaded_bytes;
    mark(t_answer, confirmed);
    rep.dest_finish_s = m.synced.finish_s;
    return ok();
  };
  auto poll_peer = [&]() -> Result<void> {
    while (wire->peer_spoke()) {
      WireMessage m = MDEVMIG_TRY(wire->recv(page_size_of(guest), opt.peer_timeout));
      MDEVMIG_TRY(take_answer(m));
    }
    return ok();
  };

  Xxh3 hash = new_xxh3();
  uint64_t guest_pages_sent = 0;
  Clock::time_point t_stop;
  std::optional<GuestPageSender> guest_sender;
  if (guest) {
    guest_sender.emplace(std::span<const std::byte>(guest->data(), guest->size()), gps,
                         opt.skip_unchanged_guest);
  }
  rep.skip_unchanged_guest = guest && opt.skip_unchanged_guest;
  auto send_guest = [&](const dirty::Bitmap& pages, uint32_t iteration,
                        bool poll) -> Result<GuestPageSender::Counts> {
    return guest_sender->send(pages, iteration, opt.chunk_size, wire->enc,
                              [&](std::span<const std::byte> m) -> Result<void> {
                                MDEVMIG_TRY(wire->send(m));
                                if (poll) MDEVMIG_TRY(poll_peer());
                                return ok();
                              });
  };

  // Asks the destination to say when what was sent so far reached its device, and goes
  // on: the answer comes while the source sends on.
  auto send_sync = [&]() -> Result<void> {
    MDEVMIG_TRY(wire->send(wire->enc.wire_sync({++sync_seq})));
    MDEVMIG_TRY(wire->flush());
    unanswered.push_back(t_unsynced.value_or(Clock::now()));
    t_unsynced.reset();
    synced_total = sent_total;
    return ok();
  };
  // Pre-copy bytes handed to the connection (after a sync every opt.sync_step_bytes).
  auto count_sent = [&](Clock::time_point t_first, uint64_t n) -> Result<void> {
    if (n == 0) return ok();
    if (!t_unsynced) t_unsynced = t_first;
    sent_total += n;
    if (sync && opt.sync_step_bytes > 0 && sent_total - synced_total >= opt.sync_step_bytes)
      MDEVMIG_TRY(send_sync());
    return ok();
  };

  // Sends what read() has now, until it has nothing or `budget` bytes went, or (pre-copy)
  // `enough` says so after a chunk; returns the bytes sent.
  auto send_device = [&](schema::Phase phase, uint64_t budget,
                         const std::function<Result<bool>()>& enough) -> Result<uint64_t> {
    uint64_t sent = 0;
    while (sent < budget) {
      if (opt.cancel) MDEVMIG_TRY(opt.cancel->check("migrate"));
      const auto t_chunk = Clock::now();
      auto data = MDEVMIG_TRY(ch.read(opt.chunk_size));
      if (data.empty()) return sent;
      const schema::ChunkHead head =
          schema::chunk_head(true, rep.chunks, rep.stream_bytes, phase, data);
      MDEVMIG_TRY(wire->send(head.bytes));
      MDEVMIG_TRY(wire->send(data));
      MDEVMIG_TRY(wire->send(schema::zero_pad(head.pad)));
      schema::hash_chunk_identity(hash.get(), head.xxh3);
      ++rep.chunks;
      rep.stream_bytes += data.size();
      sent += data.size();
      if (phase == schema::Phase::kPreCopy) {
        MDEVMIG_TRY(count_sent(t_chunk, data.size()));
        MDEVMIG_TRY(poll_peer());
        if (enough && MDEVMIG_TRY(enough())) return sent;
      }
    }
    return sent;
  };

  auto body = [&]() -> Result<void> {
    const bool precopy = opt.precopy && ch.live();
    const auto t_arc = Clock::now();
    MDEVMIG_TRY(ch.start_save(precopy));
    const double arc_s = since(t_arc);
    // What switching over costs whatever is left to send: the source's stop and the
    // destination's commit (the end of its load) and start, as the destination measures
    // them. Until its first answer (and from an older destination, which does not
    // answer), three state changes timed like this one and the reply timed like the
    // hello; the hello's round trip also holds the destination's checks and first
    // allocations (10-60 ms in the lab), where the last reply is one message on a
    // connection that is up. The source's stop is timed like this state change until a
    // pass read what is pending; then like that read (below).
    rep.switchover_fixed_s = 3 * arc_s + round_trip_s;
    double stop_s = arc_s;
    if (guest) (void)MDEVMIG_TRY(guest->collect_dirty());  // from here on, writes count
    const auto t_pre = Clock::now();
    double bandwidth = 0, last_seconds = 0, dirty_rate = 0;
    Clock::time_point t_decision = Clock::now(), t_last_pending = t_decision;
    uint64_t last_pending = 0;
    uint64_t guest_dirty_estimate = 0;
    bool guest_pass_sent = false;  // a pre-copy pass sent all of guest memory
    mark(Clock::now(), 0);  // nothing sent yet: where the first stretch of sending begins
    // What the policy is given when it looks: what is left (`pending` read from the device
    // just now, at t_pending, and the guest's pages not yet sent), with the rates and
    // costs measured so far.
    auto policy_input = [&](uint32_t completed, uint64_t pending, uint64_t guest_left,
                            Clock::time_point t_pending) {
      PolicyInput in;
      in.iteration = completed;
      in.remaining_bytes = pending + guest_left;
      in.bandwidth_bps = bandwidth;
      in.stopcopy_bps = arrival;
      if (!unanswered.empty() || t_unsynced) {
        const auto first = unanswered.empty() ? *t_unsynced : unanswered.front();
        in.in_flight_bytes =
            in_flight_bytes(sent_total, confirmed, since(std::max(first, t_answer)), arrival);
      }
      // The workload dirties from here (what is pending was just read) until it pauses
      // right before the stop: through the decision and the pause, which waits for the
      // workload's current write. Not known before it happens; the source's stop, timed as
      // below, bounds it here (the report's decision_to_stop_s says what it was).
      in.decision_to_stop_s = since(t_pending) + stop_s;
      in.dirty_rate_bps = dirty_rate;
      in.elapsed_s = since(t_pre);
      // Once the destination answered, the fixed part is the source's stop (timed by the
      // last reads) and the destination's finish.
      if (answered > 0) rep.switchover_fixed_s = stop_s + rep.dest_finish_s;
      in.switchover_fixed_s = rep.switchover_fixed_s;
      return in;
    };
    // Reads what the device has pending, timing the read: the source's stop is one call
    // into the device's driver with the workload paused, 0.2-15 ms in the lab, where
    // starting the save (which also starts dirty tracking) took up to 0.5 s: it is timed
    // like this read, a call of the same kind under the load of the moment, not like the
    // start: the median of the last reads, since one read now and then waits for the
    // machine (tens of ms in the lab) where the stop, once, most likely does not.
    std::array<double, 15> read_times{};  // a ring of the last reads' times
    std::size_t reads = 0;
    auto read_pending = [&]() -> Result<uint64_t> {
      const auto t_read = Clock::now();
      const uint64_t p = MDEVMIG_TRY(ch.pending());
      read_times[reads++ % read_times.size()] = since(t_read);
      std::array<double, 15> sorted = read_times;
      const std::size_t n = std::min(reads, sorted.size());
      std::nth_element(sorted.begin(), sorted.begin() + n / 2, sorted.begin() + n);
      stop_s = sorted[n / 2];
      return p;
    };
    std::optional<Decision> decided;
    PolicyInput decided_in;
    auto take = [&](const Decision& d, const PolicyInput& in, Clock::time_point t_pending) {
      if (d.verdict != Verdict::kSwitchover) return false;
      decided = d;
      decided_in = in;
      t_decision = t_pending;
      return true;
    };
    for (uint32_t it = 1;; ++it) {
      if (opt.cancel) MDEVMIG_TRY(opt.cancel->check("migrate"));
      const auto t_it = Clock::now();
      IterationStats s;
      s.iteration = it;
      const uint64_t guest_left = !guest ? 0 : it == 1 ? guest->size() : guest_dirty_estimate;
      // Within the pass, after each chunk once a rate is known: whether what is left of it
      // (and what was dirtied since it began) fits the target now.
      double last_estimate = -1;  // at the last look within this pass
      auto enough = [&]() -> Result<bool> {
        if (arrival <= 0 && bandwidth <= 0) return false;
        const uint64_t p = MDEVMIG_TRY(read_pending());
        const auto t_pending = Clock::now();
        PolicyInput in = policy_input(it - 1, p, guest_left, t_pending);
        in.within_pass = true;
        const double estimate = estimate_downtime(in);
        if (last_estimate >= 0 && estimate >= 0 && estimate < last_estimate)
          in.estimate_step_s = last_estimate - estimate;
        last_estimate = estimate;
        const Decision d = decide(in, opt.policy);
        if (!take(d, in, t_pending)) return false;
        s.pending_bytes = p;
        s.in_flight_bytes = in.in_flight_bytes;
        s.dirty_rate_bps = dirty_rate;
        s.est_downtime_s = d.estimated_downtime_s;
        s.verdict = d.reason;
        return true;
      };
      // One iteration sends what was pending when it began; pages dirtied meanwhile are
      // the next iteration's (else a busy device keeps one iteration going for ever).
      uint64_t pending = 0;
      if (precopy) {
        pending = MDEVMIG_TRY(ch.pending());
        s.device_bytes = MDEVMIG_TRY(send_device(
            schema::Phase::kPreCopy, std::max<uint64_t>(pending, opt.chunk_size), enough));
      }
      if (guest && !decided) {
        const auto t_guest = Clock::now();
        dirty::Bitmap pages = MDEVMIG_TRY(guest->collect_dirty());
        if (it == 1) pages.set_all();
        const GuestPageSender::Counts c = MDEVMIG_TRY(send_guest(pages, it, true));
        s.guest_pages = c.sent;
        s.guest_pages_skipped = c.skipped;
        rep.precopy_guest_skipped_pages += c.skipped;
        guest_pages_sent += s.guest_pages;
        guest_dirty_estimate = s.guest_pages * gps;
        guest_pass_sent = true;
        MDEVMIG_TRY(count_sent(t_guest, s.guest_pages * gps));
      }
      const double send_s = since(t_it);
      const uint64_t sent = s.device_bytes + s.guest_pages * gps;
      rep.precopy_device_bytes += s.device_bytes;
      s.guest_bytes = s.guest_pages * gps;
      rep.precopy_guest_bytes += s.guest_bytes;
      if (decided) {
        s.seconds = since(t_it);
        s.bandwidth_bps = bandwidth;
        s.arrival_bps = arrival;
        rep.log.push_back(s);
        rep.iterations = it;
        if (opt.on_iteration) opt.on_iteration(s);
        break;
      }
      if (sync && sent_total > synced_total) MDEVMIG_TRY(send_sync());
      MDEVMIG_TRY(poll_peer());
      // The estimate needs a measured stop-copy rate: until two answers of a stretch came
      // (within the first pass, nearly always), wait for the answers.
      while (sync && arrival == 0 && answered < sync_seq) {
        WireMessage m = MDEVMIG_TRY(wire->recv(page_size_of(guest), opt.peer_timeout));
        MDEVMIG_TRY(take_answer(m));
      }
      s.seconds = since(t_it);
      if (sent >= (256u << 10) && send_s > 0) bandwidth = static_cast<double>(sent) / send_s;
      s.bandwidth_bps = bandwidth;
      s.arrival_bps = arrival;
      s.pending_bytes = precopy ? MDEVMIG_TRY(read_pending()) : 0;
      // Dirtied per second since the last pass's figures: a pass sends what was pending
      // at its start, so what is pending after it was dirtied during it, and what grew
      // between the passes was dirtied between them (known from the first pass on).
      // Guest pages sent in this pass were dirtied during the last one.
      const auto t_pending = Clock::now();
      const double interval =
          it > 1 ? std::chrono::duration<double>(t_pending - t_last_pending).count() : s.seconds;
      const uint64_t grew_between = it > 1 && pending > last_pending ? pending - last_pending : 0;
      if (interval > 0)
        s.dirty_rate_bps = static_cast<double>(s.pending_bytes + grew_between) / interval;
      if (it > 1 && last_seconds > 0)
        s.dirty_rate_bps += static_cast<double>(s.guest_pages * gps) / last_seconds;
      dirty_rate = s.dirty_rate_bps;
      t_last_pending = t_pending;
      last_pending = s.pending_bytes;
      last_seconds = s.seconds;
      PolicyInput in = policy_input(it, s.pending_bytes, it > 1 ? guest_dirty_estimate : 0,
                                    t_pending);
      in.device_idle = sent == 0;
      s.in_flight_bytes = in.in_flight_bytes;
      Decision d = precopy || guest
                       ? decide(in, opt.policy)
                       : Decision{Verdict::kSwitchover,
                                  opt.precopy ? "no pre-copy on this channel" : "pre-copy disabled",
                                  -1, true};
      s.est_downtime_s = d.estimated_downtime_s;
      s.verdict = d.reason;
      rep.log.push_back(s);
      rep.iterations = it;
      if (opt.on_iteration) opt.on_iteration(s);
      if (take(d, in, t_pending)) break;
      // Nothing to send: let the workload dirty something rather than spin. The answers
      // that come meanwhile measure the pause, not the path: a new stretch begins.
      if (sent == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        marks.clear();
        if (sent_total == confirmed) mark(Clock::now(), confirmed);
      }
    }
    rep.switchover_reason = explain(*decided, decided_in, opt.policy);
    rep.estimated_downtime_s = decided->estimated_downtime_s;
    rep.stopcopy_rate_bps = arrival;
    rep.in_flight_bytes = decided_in.in_flight_bytes;
    rep.precopy_s = since(t_pre);

    // Switchover: the "VM" stops, then the device.
    if (opt.before_stop) opt.before_stop();
    t_stop = Clock::now();
    MDEVMIG_TRY(ch.stop_copy());
    const auto t_stopped = Clock::now();
    rep.decision_to_stop_s = since(t_decision);
    const schema::WireSwitchover sw{rep.iterations, rep.precopy_device_bytes,
                                    rep.switchover_reason};
    MDEVMIG_TRY(wire->send(wire->enc.wire_switchover(sw)));
    rep.stopcopy_device_bytes = MDEVMIG_TRY(send_device(schema::Phase::kStopCopy, UINT64_MAX, {}));
    if (guest) {
      dirty::Bitmap pages = MDEVMIG_TRY(guest->collect_dirty());
      // A switchover within the first pass's device part: guest memory was never sent.
      if (!guest_pass_sent) pages.set_all();
      const GuestPageSender::Counts c = MDEVMIG_TRY(send_guest(pages, rep.iterations + 1, false));
      guest_pages_sent += c.sent;
      rep.stopcopy_guest_bytes = c.sent * gps;
      rep.stopcopy_guest_skipped_pages = c.skipped;
    }
    rep.stopcopy_send_s = since(t_stopped);
    rep.stream_xxh3 = XXH3_64bits_digest(hash.get());
    MDEVMIG_TRY(wire->send(
        wire->enc.wire_done({rep.chunks, rep.stream_bytes, rep.stream_xxh3, guest_pages_sent})));
    MDEVMIG_TRY(wire->flush());
    // Answers to the last syncs may come first.
    WireMessage done = MDEVMIG_TRY(wire->recv(page_size_of(guest), opt.peer_timeout));
    while (done.kind == WireMessage::Kind::kSynced) {
      MDEVMIG_TRY(take_answer(done));
      done = MDEVMIG_TRY(wire->recv(page_size_of(guest), opt.peer_timeout));
    }
    if (done.kind != WireMessage::Kind::kDone || done.done.stream_bytes != rep.stream_bytes ||
        done.done.stream_xxh3 != rep.stream_xxh3) {
      return Error::make_verdict(schema::kCorruptErrno, "migration",
                                 "destination confirmed a different stream");
    }
    rep.downtime_s = since(t_stop);
    return ok();
  };

  if (auto r = body(); !r.ok()) {
    Error e = std::move(r).error();
    e.context += " (source device state " + ch.state_name() + ")";
    wire->try_send_error(e);
    Error out = with_recovery(std::move(e), ch.recover());
    if (opt.after_recover) opt.after_recover();
    return out;
  }
  // The destination runs: the source stays stopped (the migration is complete).
  auto fin = ch.finish_save(false);
  if (!fin.ok()) {
    fin.error().context += " (after a completed migration; the destination runs)";
    return std::move(fin).error();
  }
  rep.wire_bytes = wire->bytes();
  rep.total_s = since(t0);
  return rep;
}

// ---- destination ----------------------------------------------------------------------------

Result<MigrationReport> run_destination(Channel& ch, const schema::DeviceIdentity& id,
                                        GuestMemory* guest, int sock,
                                        const DestinationOptions& opt) {
  const auto t0 = Clock::now();
  MigrationReport rep;
  rep.channel = ch.kind();
  auto wire = MDEVMIG_TRY(Wire::open(sock, "migration connection", opt.cancel));
  WireMessage hello = MDEVMIG_TRY(wire->recv(page_size_of(guest), opt.peer_timeout));
  if (hello.kind != WireMessage::Kind::kHello || hello.hello.role != schema::Role::kSource) {
    Error e = Error::make_verdict(schema::kCorruptErrno, "migration handshake",
                                  "peer did not start with a source hello");
    wire->try_send_error(e);
    return e;
  }
  auto compatible = check_compatible(hello.hello.device, id);
  if (compatible.ok()) compatible = check_guest(hello.hello, guest);
  if (!compatible.ok()) {
    wire->try_send_error(compatible.error());
    return std::move(compatible).error();
  }
  MDEVMIG_TRY(
      wire->send(wire->enc.wire_hello(hello_for(schema::Role::kDestination, ch, id, guest))));
  MDEVMIG_TRY(wire->flush());

  Xxh3 hash = new_xxh3();
  Clock::time_point t_switch = Clock::now();
  bool switched = false;
  uint64_t guest_pages = 0;
  uint64_t synced = 0;

  auto body = [&]() -> Result<void> {
    const auto t_arc = Clock::now();
    MDEVMIG_TRY(ch.start_resume());
    // The finish is two state changes (RESUMING to STOP commits the stream, then
    // RUNNING), each timed like this one; the stop-copy's own load is in the rate the
    // source measures from the sync answers.
    const double finish_s = 2 * since(t_arc);
    for (;;) {
      if (opt.cancel) MDEVMIG_TRY(opt.cancel->check("migrate"));
      WireMessage m = MDEVMIG_TRY(wire->recv(page_size_of(guest), opt.peer_timeout));
      switch (m.kind) {
        case WireMessage::Kind::kChunk: {
          const schema::ChunkView& c = m.chunk;
          if (c.seq != rep.chunks || c.offset != rep.stream_bytes) {
            return Error::make_verdict(schema::kCorruptErrno, "receive chunk",
                                       "chunk " + std::to_string(c.seq) + " at offset " +
                                           std::to_string(c.offset) + ", expected " +
                                           std::to_string(rep.chunks) + " at " +
                                           std::to_string(rep.stream_bytes));
          }
          MDEVMIG_TRY(ch.write(c.data));
          schema::hash_chunk_identity(hash.get(), c.xxh3);
          ++rep.chunks;
          rep.stream_bytes += c.data.size();
          (c.phase == schema::Phase::kPreCopy ? rep.precopy_device_bytes
                                              : rep.stopcopy_device_bytes) += c.data.size();
          break;
        }
        case WireMessage::Kind::kGuestPages: {
          const uint64_t n =
              MDEVMIG_TRY(apply_guest_pages(std::span<std::byte>(guest->data(), guest->size()),
                                            guest->page_size(), m.guest_pages));
          guest_pages += n;
          (switched ? rep.stopcopy_guest_bytes : rep.precopy_guest_bytes) += n * guest->page_size();
          break;
        }
        case WireMessage::Kind::kSwitchover:
          switched = true;
          t_switch = Clock::now();
          rep.iterations = m.switchover.iterations;
          rep.switchover_reason = m.switchover.reason;
          break;
        case WireMessage::Kind::kDone: {
          rep.stream_xxh3 = XXH3_64bits_digest(hash.get());
          if (m.done.chunks != rep.chunks || m.done.stream_bytes != rep.stream_bytes ||
              m.done.stream_xxh3 != rep.stream_xxh3 || m.done.guest_pages_sent != guest_pages) {
            return Error::make_verdict(schema::kCorruptErrno, "receive done",
                                       "totals or stream XXH3 differ from what arrived");
          }
          MDEVMIG_TRY(ch.finish_resume(opt.run));
          MDEVMIG_TRY(wire->send(
              wire->enc.wire_done({rep.chunks, rep.stream_bytes, rep.stream_xxh3, guest_pages})));
          MDEVMIG_TRY(wire->flush());
          return ok();
        }
        case WireMessage::Kind::kSync: {
          if (switched || m.sync.seq != synced + 1) {
            return Error::make_verdict(schema::kCorruptErrno, "receive sync",
                                       switched ? "sync after the switchover"
                                                : "sync " + std::to_string(m.sync.seq) +
                                                      ", expected " + std::to_string(synced + 1));
          }
          synced = m.sync.seq;
          MDEVMIG_TRY(ch.drain());
          // loadSeconds is no longer measured (see mdevmig.capnp): 0.
          const schema::WireSynced reply{synced, rep.stream_bytes + rep.precopy_guest_bytes, 0,
                                         finish_s};
          MDEVMIG_TRY(wire->send(wire->enc.wire_synced(reply)));
          MDEVMIG_TRY(wire->flush());
          rep.dest_finish_s = finish_s;
          break;
        }
        case WireMessage::Kind::kHello:
        case WireMessage::Kind::kError:
        case WireMessage::Kind::kSynced:
          return Error::make_verdict(schema::kCorruptErrno, "receive",
                                     std::string("unexpected ") + schema::wire_kind_name(m.kind));
      }
    }
  };
  if (auto r = body(); !r.ok()) {
    Error e = std::move(r).error();
    e.context += " (destination device state " + ch.state_name() + ")";
    wire->try_send_error(e);
    return with_recovery(std::move(e), ch.recover());
  }
  rep.downtime_s = since(t_switch);
  rep.wire_bytes = wire->bytes();
  rep.total_s = since(t0);
  return rep;
}

}  // namespace mdevmig::engine
