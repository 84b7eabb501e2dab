#include "migration/io/net.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>

#include "migration/io/cancel.h"

namespace mdevmig::io {

Result<HostPort> parse_host_port(std::string_view text, std::string_view default_host) {
  HostPort hp;
  std::string_view port = text;
  hp.host = std::string(default_host);
  if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
    hp.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
      hp.host = hp.host.substr(1, hp.host.size() - 2);
    }
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535 ||
      hp.host.empty()) {
    return Error::make(EINVAL, "parse address", "\"" + std::string(text) + "\" (want HOST:PORT)");
  }
  hp.port = static_cast<uint16_t>(value);
  return hp;
}

namespace {

struct AddrInfo {
  addrinfo* list = nullptr;
  ~AddrInfo() {
    if (list != nullptr) freeaddrinfo(list);
  }
};

Result<void> resolve(const HostPort& where, bool passive, AddrInfo& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  const std::string port = std::to_string(where.port);
  const int rc = getaddrinfo(where.host.c_str(), port.c_str(), &hints, &out.list);
  if (rc != 0)
    return Error::make(EHOSTUNREACH, "getaddrinfo", where.host + ": " + gai_strerror(rc));
  return ok();
}

std::string name(const HostPort& hp) { return hp.host + ":" + std::to_string(hp.port); }

void nodelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

Result<UniqueFd> listen_tcp(const HostPort& where) {
  AddrInfo ai;
  MDEVMIG_TRY(resolve(where, true, ai));
  Error last = Error::make(EADDRNOTAVAIL, "listen", name(where));
  for (addrinfo* a = ai.list; a != nullptr; a = a->ai_next) {
    UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd) {
      last = Error::from_errno("socket", name(where));
      continue;
    }
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      last = Error::from_errno("bind", name(where));
      continue;
    }
    if (::listen(fd.get(), 1) != 0) {
      last = Error::from_errno("listen", name(where));
      continue;
    }
    return fd;
  }
  return last;
}

Result<uint16_t> local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return Error::from_errno("getsockname");
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return Error::make(EAFNOSUPPORT, "getsockname");
}

Result<UniqueFd> accept_one(int listen_fd, std::chrono::milliseconds timeout,
                            const Cancel* cancel) {
  pollfd p[2] = {{listen_fd, POLLIN, 0}, {cancel ? cancel->fd() : -1, POLLIN, 0}};
  for (;;) {
    if (cancel) MDEVMIG_TRY(cancel->check("accept"));
    const int rc = ::poll(p, 2, static_cast<int>(timeout.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc > 0 && p[0].revents == 0) continue;  // the stop request: checked above
    if (rc < 0) return Error::from_errno("poll", "listening socket");
    if (rc == 0) return Error::make(ETIMEDOUT, "accept", "no source connected in time");
    break;
  }
  const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return Error::from_errno("accept");
  nodelay(fd);
  return UniqueFd(fd);
}

Result<UniqueFd> connect_tcp(const HostPort& where) {
  AddrInfo ai;
  MDEVMIG_TRY(resolve(where, false, ai));
  Error last = Error::make(ECONNREFUSED, "connect", name(where));
  for (addrinfo* a = ai.list; a != nullptr; a = a->ai_next) {
    UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd) {
      last = Error::from_errno("socket", name(where));
      continue;
    }
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      last = Error::from_errno("connect", name(where));
      continue;
    }
    nodelay(fd.get());
    return fd;
  }
  return last;
}

namespace {

bool loopback_addr(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    return (ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(&a) || (IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127);
  }
  return false;
}

}  // namespace

Result<bool> is_loopback(const HostPort& where) {
  AddrInfo ai;
  MDEVMIG_TRY(resolve(where, true, ai));
  bool any = false;
  for (addrinfo* a = ai.list; a != nullptr; a = a->ai_next) {
    if (!loopback_addr(a->ai_addr)) return false;
    any = true;
  }
  return any;
}

std::string peer_name(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown peer";
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "unknown peer";
}

Result<std::pair<UniqueFd, UniqueFd>> stream_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return Error::from_errno("socketpair");
  return std::pair<UniqueFd, UniqueFd>{UniqueFd(sv[0]), UniqueFd(sv[1])};
}

}  // namespace mdevmig::io
