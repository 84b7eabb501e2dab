// The other end of a socketpair, for testing the QMP and qtest clients without QEMU:
// the test scripts what the "QEMU" side sends and checks what it receives.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "base/fd.h"
#include "tools/qtest/line_channel.h"

namespace mdevmig::qemu::testing {

/// Creates a connected pair: the client's LineChannel and the peer's raw fd.
inline std::pair<LineChannel, UniqueFd> make_pair(
    std::size_t max_line = LineChannel::kDefaultMaxLine) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  return {LineChannel(UniqueFd(sv[0]), "fake", max_line), UniqueFd(sv[1])};
}

/// The scripted side. Its script runs on a thread, joined on destruction.
class FakePeer {
 public:
  explicit FakePeer(UniqueFd fd) : fd_(std::move(fd)) {}
  ~FakePeer() { join(); }

  void run(std::function<void(FakePeer&)> script) {
    thread_ = std::thread([this, s = std::move(script)] { s(*this); });
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  void send(const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::send(fd_.get(), text.data() + done, text.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }
  /// Sends `text` in pieces of `piece` bytes with a pause between them.
  void send_slowly(const std::string& text, std::size_t piece, std::chrono::milliseconds pause) {
    for (std::size_t i = 0; i < text.size(); i += piece) {
      send(text.substr(i, piece));
      std::this_thread::sleep_for(pause);
    }
  }
  /// The next line the client sent (without '\n'), or nullopt on EOF / after `timeout`.
  std::optional<std::string> read_line(
      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[65536];
      ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  void close() { fd_.reset(); }

 private:
  UniqueFd fd_;
  std::string buf_;
  std::thread thread_;
};

}  // namespace mdevmig::qemu::testing
