// Cancel: a request to stop (Ctrl-C, SIGTERM, SIGHUP) raised from a signal handler and seen by
// every pipeline that holds it. The handler only stores the signal number and writes an
// eventfd (both async-signal-safe); the pipelines do the rest: save and restore loops
// check it between chunks, and every io_uring reader and writer given it keeps a poll on
// the eventfd in its ring, so a wait in any thread (a migration's destination thread, a
// wait for a peer) wakes up and fails with EINTR. Whoever sees the error recovers the
// device as for any other failure.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <string>

#include "base/fd.h"
#include "base/result.h"

namespace mdevmig::io {

class Cancel {
 public:
  /// A Cancel with its eventfd; not movable (a signal handler may hold its address).
  [[nodiscard]] static Result<std::unique_ptr<Cancel>> create() {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) return Error::from_errno("eventfd", "cancel request");
    return std::unique_ptr<Cancel>(new Cancel(std::move(fd)));
  }
  Cancel(const Cancel&) = delete;
  Cancel& operator=(const Cancel&) = delete;

  /// Async-signal-safe: records `signo` (the first one wins) and wakes every poller.
  void request(int signo) noexcept {
    int none = 0;
    signo_.compare_exchange_strong(none, signo);
    const uint64_t one = 1;
    const int saved = errno;
    (void)!::write(fd_.get(), &one, sizeof(one));
    errno = saved;
  }
  [[nodiscard]] bool requested() const noexcept { return signo_.load() != 0; }
  /// The signal that asked to stop (0: none yet).
  [[nodiscard]] int signal() const noexcept { return signo_.load(); }
  /// Readable once stop was requested (and from then on).
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

  /// The error of an interrupted operation `what`: EINTR, reading "interrupted by SIGINT
  /// on save: ...".
  [[nodiscard]] Error error(std::string what) const {
    const char* abbrev = ::sigabbrev_np(signal());
    return Error::make(EINTR,
                       std::string("interrupted by ") +
                           (abbrev ? "SIG" + std::string(abbrev) : "a request to stop"),
                       std::move(what));
  }
  /// ok(), or error(what) once stop was requested.
  [[nodiscard]] Result<void> check(std::string what) const {
    if (requested()) return error(std::move(what));
    return ok();
  }

 private:
  explicit Cancel(UniqueFd fd) : fd_(std::move(fd)) {}
  static_assert(std::atomic<int>::is_always_lock_free, "a signal handler stores into it");

  std::atomic<int> signo_{0};
  UniqueFd fd_;
};

/// Routes SIGINT, SIGTERM and SIGHUP (a dropped SSH session must not leave a device
/// stopped) to `cancel` for the lifetime of this object (a process has one: main() or a
/// test creates it). The first signal requests the stop; the
/// handler is reset then, so a second Ctrl-C terminates at once. No SA_RESTART: a
/// blocking wait returns EINTR and looks at the request.
class CancelOnSignals {
 public:
  explicit CancelOnSignals(Cancel& cancel) {
    target().store(&cancel);
    struct sigaction sa {};
    sa.sa_handler = [](int signo) {
      if (Cancel* c = target().load()) c->request(signo);
    };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    for (int i = 0; i < kCount; ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~CancelOnSignals() {
    for (int i = 0; i < kCount; ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
    target().store(nullptr);
  }
  CancelOnSignals(const CancelOnSignals&) = delete;
  CancelOnSignals& operator=(const CancelOnSignals&) = delete;

 private:
  static constexpr int kCount = 3;
  static constexpr int kSignals[kCount] = {SIGINT, SIGTERM, SIGHUP};
  // The one place a signal handler can find its Cancel.
  static std::atomic<Cancel*>& target() {
    static std::atomic<Cancel*> t{nullptr};
    return t;
  }
  struct sigaction old_[kCount] {};
};

}  // namespace mdevmig::io
