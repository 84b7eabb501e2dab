#include "tools/cli/stress_local_control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

namespace mdevmig::cli::local {

using json = nlohmann::json;

Result<void> send_msg(int fd, const json& j, int pass_fd) {
  const std::string s = j.dump();
  iovec iov{const_cast<char*>(s.data()), s.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  if (pass_fd >= 0) {
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  if (::sendmsg(fd, &m, MSG_NOSIGNAL) < 0)
    return Error::from_errno("send", "stress control message");
  return ok();
}

Result<json> recv_msg(int fd, std::chrono::milliseconds timeout, UniqueFd* fd_out) {
  pollfd p{fd, POLLIN, 0};
  const int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (rc < 0) return Error::from_errno("poll", "stress control");
  if (rc == 0)
    return Error::make(ETIMEDOUT, "stress control",
                       "no answer in " + std::to_string(timeout.count()) + " ms");
  std::string buf(256u << 10, '\0');
  iovec iov{buf.data(), buf.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  m.msg_control = cbuf;
  m.msg_controllen = sizeof cbuf;
  const ssize_t n = ::recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
  if (n < 0) return Error::from_errno("recv", "stress control");
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int got;
      std::memcpy(&got, CMSG_DATA(c), sizeof got);
      if (fd_out)
        fd_out->reset(got);
      else
        ::close(got);
    }
  }
  if (n == 0) return Error::make(EPIPE, "stress control", "the peer exited");
  buf.resize(static_cast<std::size_t>(n));
  json j = json::parse(buf, nullptr, false);
  if (j.is_discarded()) return Error::make(EPROTO, "stress control", "malformed message");
  return j;
}

json error_json(const Error& e) { return {{"ok", false}, {"error", e.message()}}; }

Result<void> run_self(std::vector<std::string> args, int dev_fd) {
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) return Error::from_errno("pipe");
  const pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("fork");
  if (pid == 0) {
    ::dup2(err[1], 2);
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, 1);
    ::fcntl(dev_fd, F_SETFD, 0);  // VFIO device fds are O_CLOEXEC
    std::vector<char*> argv{const_cast<char*>("mdevmig")};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  ::close(err[1]);
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<std::size_t>(n));
  ::close(err[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return ok();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return Error::make(EIO, "mdevmig " + args[0],
                     text.empty() ? "exit status " + std::to_string(st) : text);
}

}  // namespace mdevmig::cli::local
