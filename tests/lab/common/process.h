// Lab tests that run a program (the mdevmig CLI) as a child: start it with some of our
// fds inherited, read its output, wait for it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mdevmig::lab {

struct Proc {
  pid_t pid = -1;
  int out = -1, err = -1;  // read ends of the child's stdout and stderr
};

// Starts `bin args...` with its stdout and stderr on pipes; `keep_fds` are inherited
// under the same numbers (VFIO device fds are O_CLOEXEC).
Proc spawn(const std::string& bin, const std::vector<std::string>& args,
           const std::vector<int>& keep_fds = {});

struct Exit {
  int rc = -1;  // the exit status, or 128 + the signal that killed it
  std::string out, err;
  nlohmann::json json() const { return nlohmann::json::parse(out, nullptr, false); }
};

// Reads both pipes to their end and reaps the child; `err_seen` is stderr already read
// (by wait_for_line) and goes in front of the rest.
Exit wait(Proc& p, std::string err_seen = {});

// `name` found in $PATH (the lab's PATH has the sbin directories), or `name` itself.
std::string which(const std::string& name);

// Runs `bin args...` (looked up in $PATH, no shell) to its end and collects its output.
Exit run(const std::string& bin, const std::vector<std::string>& args);

// Reads `fd` into `seen` until a whole line holds `needle`; that line, or nullopt at
// end of file or after `limit`.
std::optional<std::string> wait_for_line(int fd, const std::string& needle, std::string& seen,
                                         std::chrono::seconds limit);

// The lab guest's loopback interface starts down; TCP between processes needs it.
void loopback_up();

}  // namespace mdevmig::lab
