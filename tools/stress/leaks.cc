#include "tools/stress/leaks.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>

#include "tools/lab/kernel_reports.h"
#include "tools/mdev/mdev.h"

namespace mdevmig::stress {

KmsgWatcher::KmsgWatcher() : fd_(::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)) {
  if (fd_) ::lseek(fd_.get(), 0, SEEK_END);
}

std::vector<std::string> KmsgWatcher::take() {
  std::vector<std::string> out;
  if (!fd_) return out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf, sizeof buf - 1);
    if (n < 0 && errno == EPIPE) continue;  // overwritten records: go on with the next
    if (n <= 0) break;
    buf[n] = '\0';
    // "prio,seq,time,flags;text\n"
    const char* text = std::strchr(buf, ';');
    std::string line = text ? text + 1 : buf;
    while (!line.empty() && line.back() == '\n') line.pop_back();
    out.push_back(std::move(line));
  }
  return out;
}

bool is_kernel_bug_line(const std::string& line) {
  static const std::regex kBad(lab::kKernelReportsEre, std::regex::extended | std::regex::nosubs);
  return std::regex_search(line, kBad);
}

std::size_t count_open_fds() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the directory stream itself
}

std::vector<pid_t> child_processes() {
  std::vector<pid_t> out;
  const pid_t self = ::getpid();
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    std::string stat;
    std::getline(in, stat);
    // pid (comm) state ppid ...: comm may hold spaces and parentheses.
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == self)
      out.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
  }
  ::closedir(d);
  return out;
}

LeakCheck::LeakCheck(std::set<std::string> allowed_instances)
    : baseline_instances_(std::move(allowed_instances)), baseline_fds_(count_open_fds()) {
  for (const auto& u : mdev::mdev_devices()) baseline_instances_.insert(u);
}

std::vector<std::string> LeakCheck::check(const std::set<pid_t>& live_children, long extra_fds,
                                          const std::string& expected_kernel,
                                          uint64_t* expected_seen) {
  std::vector<std::string> problems;
  for (const auto& u : mdev::mdev_devices())
    if (!baseline_instances_.count(u)) problems.push_back("mdev instance left behind: " + u);
  for (pid_t p : child_processes())
    if (!live_children.count(p))
      problems.push_back("child process left behind: pid " + std::to_string(p));
  long fds = static_cast<long>(count_open_fds()),
       want = static_cast<long>(baseline_fds_) + extra_fds;
  if (fds > want)
    problems.push_back("file descriptors: " + std::to_string(fds) + " open, " +
                       std::to_string(want) + " expected");
  for (const auto& line : kmsg_.take()) {
    if (is_kernel_bug_line(line))
      problems.push_back("kernel: " + line);
    else if (!expected_kernel.empty() && line.find(expected_kernel) != std::string::npos &&
             expected_seen)
      ++*expected_seen;
  }
  return problems;
}

}  // namespace mdevmig::stress
