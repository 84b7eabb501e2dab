// Where the harness's sockets listen or connect: a unix socket in the run's folder, or a
// TCP address (QMP and qtest of a QEMU on another host, a migration that crosses hosts).
// Spelled as QEMU spells them: "unix:PATH", "tcp:HOST:PORT".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/fd.h"
#include "base/result.h"

namespace mdevmig::qemu {

struct Endpoint {
  std::string path;  ///< a unix socket (host empty)
  std::string host;  ///< a TCP address: numeric IPv4 or a name
  uint16_t port = 0;

  [[nodiscard]] static Endpoint unix_socket(std::string path) { return {std::move(path), {}, 0}; }
  [[nodiscard]] static Endpoint tcp(std::string host, uint16_t port) {
    return {{}, std::move(host), port};
  }
  /// "unix:PATH" or "tcp:HOST:PORT".
  [[nodiscard]] static Result<Endpoint> parse(std::string_view text);

  [[nodiscard]] bool is_tcp() const { return !host.empty(); }
  /// "unix:PATH" or "tcp:HOST:PORT": a QEMU chardev or migration URI.
  [[nodiscard]] std::string uri() const;
  /// The same endpoint with the port moved by `delta` (unix: the path with a suffix).
  [[nodiscard]] Endpoint next(uint16_t delta, std::string_view unix_suffix) const;
};

/// A listening stream socket on `at` (a stale unix socket file is replaced).
[[nodiscard]] Result<UniqueFd> listen_on(const Endpoint& at);
/// One connection attempt to `to`; the error keeps connect()'s errno (ENOENT and
/// ECONNREFUSED while nothing listens yet).
[[nodiscard]] Result<UniqueFd> connect_once(const Endpoint& to);
/// Whether a connect_once() error means "not there yet, try again".
[[nodiscard]] bool connect_retryable(const Error& e);

}  // namespace mdevmig::qemu
