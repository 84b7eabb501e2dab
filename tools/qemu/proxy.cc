#include "tools/qemu/proxy.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace mdevmig::qemu {
namespace {

uint64_t load_be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Writes all of `len` bytes to a blocking socket; false if the peer is gone.
bool send_all(int fd, const uint8_t* p, std::size_t len) {
  while (len > 0) {
    ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

void DeviceDataScanner::push(uint8_t byte) {
  if (have_ == sizeof window_) {
    std::memmove(window_, window_ + 1, sizeof window_ - 1);
    --have_;
  }
  window_[have_++] = byte;
  if (have_ == sizeof window_ && load_be64(window_) == kVfioDevDataMarker) {
    uint64_t size = load_be64(window_ + 8);
    // A 0 size ends the device's data; absurd sizes are not a chunk header.
    if (size > 0 && size < (1ull << 40)) {
      chunk_left_ = size;
      chunk_seen_ = 0;
      have_ = 0;
    }
  }
}

long DeviceDataScanner::feed(const uint8_t* data, std::size_t len, uint64_t skip) {
  for (std::size_t i = 0; i < len; ++i) {
    if (chunk_left_ > 0) {
      // Inside a chunk: its bytes are data, never a marker.
      --chunk_left_;
      ++data_bytes_;
      if (chunk_seen_++ == skip) return static_cast<long>(i);
      continue;
    }
    push(data[i]);
  }
  return -1;
}

void DeviceDataScanner::count(const uint8_t* data, std::size_t len) {
  for (std::size_t i = 0; i < len;) {
    if (chunk_left_ > 0) {
      const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(chunk_left_, len - i));
      chunk_left_ -= n;
      chunk_seen_ += n;
      data_bytes_ += n;
      i += n;
      continue;
    }
    push(data[i++]);
  }
}

Result<std::unique_ptr<MigrationProxy>> MigrationProxy::start(const Endpoint& listen,
                                                              const Endpoint& upstream, Fault fault,
                                                              uint64_t fault_at) {
  UniqueFd l = MDEVMIG_TRY(listen_on(listen));
  auto p = std::unique_ptr<MigrationProxy>(
      new MigrationProxy(std::move(l), listen, upstream, fault, fault_at));
  int pfd[2];
  if (::pipe2(pfd, O_CLOEXEC | O_NONBLOCK) != 0) return Error::from_errno("pipe2");
  p->stop_pipe_[0].reset(pfd[0]);
  p->stop_pipe_[1].reset(pfd[1]);
  p->thread_ = std::thread([raw = p.get()] { raw->run(); });
  return p;
}

MigrationProxy::MigrationProxy(UniqueFd listener, Endpoint listen, Endpoint upstream, Fault fault,
                               uint64_t fault_at)
    : listener_(std::move(listener)),
      listen_(std::move(listen)),
      upstream_(std::move(upstream)),
      fault_(fault),
      fault_at_(fault_at) {}

MigrationProxy::~MigrationProxy() { stop(); }

void MigrationProxy::stop() {
  if (thread_.joinable()) {
    char c = 1;
    (void)!::write(stop_pipe_[1].get(), &c, 1);
    thread_.join();
  }
  if (listener_) {
    listener_.reset();
    if (!listen_.is_tcp()) ::unlink(listen_.path.c_str());
  }
}

std::string MigrationProxy::fault_note() const {
  std::lock_guard lock(mu_);
  return note_;
}

std::vector<WirePoint> MigrationProxy::timeline() const {
  std::lock_guard lock(mu_);
  return timeline_;
}

std::vector<WirePoint> MigrationProxy::device_timeline() const {
  std::lock_guard lock(mu_);
  return device_timeline_;
}

std::string MigrationProxy::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

void MigrationProxy::set_error(std::string e) {
  std::lock_guard lock(mu_);
  if (error_.empty()) error_ = std::move(e);
}

void MigrationProxy::record() {
  // Under the lock: the relays of several connections record in time order.
  std::lock_guard lock(mu_);
  const double now = wall_now();
  const uint64_t total = forward_.load(), device = device_main_.load();
  if (!timeline_.empty() && now - timeline_.back().wall < 0.001)
    timeline_.back() = {now, total};
  else
    timeline_.push_back({now, total});
  if (!device_timeline_.empty() && now - device_timeline_.back().wall < 0.001)
    device_timeline_.back() = {now, device};
  else
    device_timeline_.push_back({now, device});
}

struct MigrationProxy::Relay {
  UniqueFd down, up;  // the source's connection, ours to the destination
  bool main = false;
  bool forward_open = true, back_open = true;
  std::thread thread;
};

Result<UniqueFd> MigrationProxy::connect_upstream() {
  for (int tries = 0;; ++tries) {
    auto s = connect_once(upstream_);
    if (s || !connect_retryable(s.error()) || tries == 1500) return s;
    pollfd st{stop_pipe_[0].get(), POLLIN, 0};
    if (::poll(&st, 1, 20) > 0)
      return Error::make(ECANCELED, "connect to " + upstream_.uri(), "proxy stopped");
  }
}

bool MigrationProxy::pump(Relay& r, bool forward, bool back, std::vector<uint8_t>& buf,
                          bool& cut_all) {
  if (forward) {
    ssize_t n = ::recv(r.down.get(), buf.data(), buf.size(), 0);
    if (n <= 0) {
      // The source finished (or died): pass the end on.
      ::shutdown(r.up.get(), SHUT_WR);
      r.forward_open = false;
    } else {
      std::size_t len = static_cast<std::size_t>(n);
      bool cut = false;
      if (r.main) {
        uint64_t before = forward_main_.load();
        if (!fault_fired_ && fault_ == Fault::kTruncate && before + len >= fault_at_) {
          len = static_cast<std::size_t>(fault_at_ > before ? fault_at_ - before : 0);
          cut = true;
        }
        if (!fault_fired_ && fault_ == Fault::kCorruptDeviceData) {
          // Scan from fault_at on; flip a byte 100 bytes into the next device chunk
          // (inside the first record's header or payload: either must be refused).
          uint64_t start = before >= fault_at_ ? 0 : fault_at_ - before;
          if (start < len) {
            long at = fault_scanner_.feed(buf.data() + start, len - start, 100);
            if (at >= 0) {
              // Inside a chunk's payload: the counting scanner below is not thrown off.
              fault_fired_ = true;
              buf[start + static_cast<std::size_t>(at)] ^= 0x5a;
              std::lock_guard lock(mu_);
              note_ = "flipped stream byte " +
                      std::to_string(before + start + static_cast<std::size_t>(at)) +
                      " (inside VFIO device data)";
            }
          }
        }
        count_scanner_.count(buf.data(), len);
        device_main_ = count_scanner_.data_bytes();
        forward_main_ += len;
      }
      bool sent = send_all(r.up.get(), buf.data(), len);
      forward_ += len;
      record();
      if (cut) {
        fault_fired_ = true;
        std::lock_guard lock(mu_);
        note_ = "stream cut after byte " + std::to_string(fault_at_);
        cut_all = true;
        return false;
      }
      if (!sent) {
        // The destination is gone: tell the source by closing its side too.
        ::shutdown(r.down.get(), SHUT_RDWR);
        return false;
      }
    }
  }
  if (back) {
    ssize_t n = ::recv(r.up.get(), buf.data(), buf.size(), 0);
    if (n <= 0) {
      // The destination closed: no more return path, and nothing can reach it.
      ::shutdown(r.down.get(), SHUT_RDWR);
      return false;
    }
    back_ += static_cast<uint64_t>(n);
    if (!send_all(r.down.get(), buf.data(), static_cast<std::size_t>(n))) r.back_open = false;
  }
  return r.forward_open || r.back_open;
}

void MigrationProxy::relay(Relay& r) {
  std::vector<uint8_t> buf(256 << 10);
  while (r.forward_open || r.back_open) {
    // A closed direction is not polled at all (a hung-up socket would wake poll).
    pollfd p[3] = {{r.forward_open ? r.down.get() : -1, POLLIN, 0},
                   {r.back_open ? r.up.get() : -1, POLLIN, 0},
                   {stop_pipe_[0].get(), POLLIN, 0}};
    if (::poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return set_error("poll: " + std::string(std::strerror(errno)));
    }
    if (p[2].revents) return;
    bool cut_all = false;
    if (!pump(r, p[0].revents != 0, p[1].revents != 0, buf, cut_all)) {
      if (cut_all) {
        std::lock_guard lock(relays_mu_);
        for (auto& other : relays_) {
          ::shutdown(other->up.get(), SHUT_RDWR);
          ::shutdown(other->down.get(), SHUT_RDWR);
        }
      }
      return;
    }
  }
}

void MigrationProxy::run() {
  // Each connection gets its own thread: multifd channels depend on each other (a
  // channel's receiver waits for a sync that comes over the main channel), so one
  // blocked send must not hold up the others.
  for (;;) {
    pollfd p[2] = {{stop_pipe_[0].get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      set_error("poll: " + std::string(std::strerror(errno)));
      break;
    }
    if (p[0].revents) break;
    // A new connection from the source: the main channel first, then multifd's.
    UniqueFd down(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!down) {
      set_error("accept: " + std::string(std::strerror(errno)));
      break;
    }
    auto up = connect_upstream();
    if (!up) {
      if (up.error().errnum != ECANCELED) set_error(up.error().message());
      break;
    }
    auto r = std::make_unique<Relay>();
    r->down = std::move(down);
    r->up = std::move(*up);
    r->main = connections_.fetch_add(1) == 0;
    std::lock_guard lock(relays_mu_);
    Relay& raw = *r;
    relays_.push_back(std::move(r));
    raw.thread = std::thread([this, &raw] { relay(raw); });
  }
  // No more connections; the relays go on until they end or stop() (they watch the
  // stop pipe too). Only this thread changes relays_, so the joins need no lock.
  for (pollfd st{stop_pipe_[0].get(), POLLIN, 0}; ::poll(&st, 1, -1) < 0 && errno == EINTR;) {
  }
  {
    // A relay blocked in a send to a destination that reads no more wakes up too.
    std::lock_guard lock(relays_mu_);
    for (auto& r : relays_) {
      ::shutdown(r->up.get(), SHUT_RDWR);
      ::shutdown(r->down.get(), SHUT_RDWR);
    }
  }
  for (auto& r : relays_)
    if (r->thread.joinable()) r->thread.join();
  std::lock_guard lock(relays_mu_);
  relays_.clear();
}

Result<uint64_t> corrupt_device_data_in_file(const std::string& path, uint64_t from) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return Error::from_errno("open", path);
  DeviceDataScanner scanner;
  std::vector<uint8_t> buf(1 << 20);
  uint64_t off = from;
  for (;;) {
    ssize_t n = ::pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(off));
    if (n < 0) return Error::from_errno("read", path);
    if (n == 0)
      return Error::make(ENOENT, "find VFIO device data",
                         path + " after byte " + std::to_string(from));
    long at = scanner.feed(buf.data(), static_cast<std::size_t>(n), 100);
    if (at >= 0) {
      uint64_t pos = off + static_cast<uint64_t>(at);
      uint8_t b = buf[static_cast<std::size_t>(at)] ^ 0x5a;
      if (::pwrite(fd.get(), &b, 1, static_cast<off_t>(pos)) != 1)
        return Error::from_errno("write", path);
      return pos;
    }
    off += static_cast<uint64_t>(n);
  }
}

}  // namespace mdevmig::qemu
