#include "common/process.h"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace mdevmig::lab {
namespace {

std::string drain(int fd) {
  std::string s;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) s.append(buf, static_cast<size_t>(n));
  return s;
}

}  // namespace

Proc spawn(const std::string& bin, const std::vector<std::string>& args,
           const std::vector<int>& keep_fds) {
  int o[2], e[2];
  EXPECT_EQ(::pipe2(o, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(e, O_CLOEXEC), 0);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(bin.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  Proc p;
  p.pid = ::fork();
  if (p.pid == 0) {
    ::dup2(o[1], 1);
    ::dup2(e[1], 2);
    for (int fd : keep_fds) ::fcntl(fd, F_SETFD, 0);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(o[1]);
  ::close(e[1]);
  p.out = o[0];
  p.err = e[0];
  return p;
}

Exit wait(Proc& p, std::string err_seen) {
  Exit r;
  std::thread t([&] { r.err = drain(p.err); });
  r.out = drain(p.out);
  t.join();
  r.err = std::move(err_seen) + r.err;
  int status = 0;
  ::waitpid(p.pid, &status, 0);
  ::close(p.out);
  ::close(p.err);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::optional<std::string> wait_for_line(int fd, const std::string& needle, std::string& seen,
                                         std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (const auto pos = seen.find(needle); pos != std::string::npos) {
      if (const auto end = seen.find('\n', pos); end != std::string::npos) {
        const auto nl = seen.rfind('\n', pos);
        const auto begin = nl == std::string::npos ? 0 : nl + 1;
        return seen.substr(begin, end - begin);
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd pf{fd, POLLIN, 0};
    if (::poll(&pf, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char buf[1024];
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return std::nullopt;
    seen.append(buf, static_cast<size_t>(n));
  }
}

std::string which(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
  for (std::string d; std::getline(dirs, d, ':');)
    if (!d.empty() && ::access((d + "/" + name).c_str(), X_OK) == 0) return d + "/" + name;
  return name;
}

Exit run(const std::string& bin, const std::vector<std::string>& args) {
  Proc p = spawn(which(bin), args);
  return wait(p);
}

void loopback_up() {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  ASSERT_EQ(::ioctl(s, SIOCGIFFLAGS, &ifr), 0);
  ifr.ifr_flags |= IFF_UP;
  ASSERT_EQ(::ioctl(s, SIOCSIFFLAGS, &ifr), 0);
  ::close(s);
}

}  // namespace mdevmig::lab
