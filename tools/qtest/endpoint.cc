#include "tools/qtest/endpoint.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "migration/io/net.h"

namespace mdevmig::qemu {
namespace {

Result<sockaddr_un> unix_addr(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path)
    return Error::make(ENAMETOOLONG, "unix socket", path);
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

io::HostPort host_port(const Endpoint& e) { return io::HostPort{e.host, e.port}; }

}  // namespace

Result<Endpoint> Endpoint::parse(std::string_view text) {
  if (text.starts_with("unix:") && text.size() > 5) return unix_socket(std::string(text.substr(5)));
  if (text.starts_with("tcp:")) {
    auto hp = io::parse_host_port(text.substr(4), "");
    if (hp && !hp->host.empty() && hp->port != 0) return tcp(hp->host, hp->port);
  }
  return Error::make(EINVAL, "parse endpoint",
                     "\"" + std::string(text) + "\" (want unix:PATH or tcp:HOST:PORT)");
}

std::string Endpoint::uri() const {
  return is_tcp() ? "tcp:" + host + ":" + std::to_string(port) : "unix:" + path;
}

Endpoint Endpoint::next(uint16_t delta, std::string_view unix_suffix) const {
  if (is_tcp()) return tcp(host, static_cast<uint16_t>(port + delta));
  return unix_socket(path + std::string(unix_suffix));
}

Result<UniqueFd> listen_on(const Endpoint& at) {
  if (at.is_tcp()) return io::listen_tcp(host_port(at));
  sockaddr_un a = MDEVMIG_TRY(unix_addr(at.path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::from_errno("socket", at.path);
  ::unlink(at.path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return Error::from_errno("bind", at.path);
  if (::listen(fd.get(), 16) != 0) return Error::from_errno("listen", at.path);
  return fd;
}

Result<UniqueFd> connect_once(const Endpoint& to) {
  if (to.is_tcp()) return io::connect_tcp(host_port(to));
  sockaddr_un a = MDEVMIG_TRY(unix_addr(to.path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::from_errno("socket", to.path);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return Error::from_errno("connect", to.path);
  return fd;
}

bool connect_retryable(const Error& e) { return e.errnum == ENOENT || e.errnum == ECONNREFUSED; }

}  // namespace mdevmig::qemu
