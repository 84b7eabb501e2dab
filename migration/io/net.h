// TCP endpoints for `mdevmig migrate --listen` / `--to HOST:PORT`, and the socketpair
// that joins a source and a destination in one process.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "base/fd.h"
#include "base/result.h"

namespace mdevmig::io {

class Cancel;

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

/// "HOST:PORT", "[v6addr]:PORT" or "PORT" (host `default_host`).
[[nodiscard]] Result<HostPort> parse_host_port(std::string_view text,
                                               std::string_view default_host);

/// A listening TCP socket on `where` (port 0: any free port).
[[nodiscard]] Result<UniqueFd> listen_tcp(const HostPort& where);
/// The port a socket is bound to.
[[nodiscard]] Result<uint16_t> local_port(int fd);
/// Accepts one connection, waiting at most `timeout` (EINTR once `cancel` fires).
[[nodiscard]] Result<UniqueFd> accept_one(int listen_fd, std::chrono::milliseconds timeout,
                                          const Cancel* cancel = nullptr);
/// Connects to `where` (numeric or resolvable host), with TCP_NODELAY.
[[nodiscard]] Result<UniqueFd> connect_tcp(const HostPort& where);
/// Whether every address `where.host` resolves to is a loopback address (127.0.0.0/8,
/// ::1, ::ffff:127.0.0.0/104); a wildcard ("0.0.0.0", "::") is not.
[[nodiscard]] Result<bool> is_loopback(const HostPort& where);
/// "ADDR:PORT" of a connected socket's peer ("[v6]:PORT"), or "unknown peer".
[[nodiscard]] std::string peer_name(int fd);
/// A connected AF_UNIX stream socketpair.
[[nodiscard]] Result<std::pair<UniqueFd, UniqueFd>> stream_pair();

}  // namespace mdevmig::io
