#include "pair.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace mdevmig::lab {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

bool PairHost::valid() const {
  return (role == "a" || role == "b") && !addr.empty() && !peer.empty() && !share.empty();
}

PairHost pair_host() {
  return {env("MDEVMIG_LAB_ROLE"), env("MDEVMIG_LAB_ADDR"), env("MDEVMIG_LAB_PEER"),
          env("MDEVMIG_LAB_SHARE")};
}

bool peer_failed(const PairHost& h) { return exists(h.share + "/" + h.peer_role() + ".failed"); }

void put(const PairHost& h, const std::string& name, const std::string& text) {
  const std::string path = h.share + "/" + name;
  {
    std::ofstream f(path + ".tmp");
    f << text;
  }
  EXPECT_EQ(std::rename((path + ".tmp").c_str(), path.c_str()), 0) << path;
}

std::optional<std::string> take(const PairHost& h, const std::string& name,
                                std::chrono::seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (exists(h.share + "/" + name)) {
      std::ifstream f(h.share + "/" + name);
      std::stringstream s;
      s << f.rdbuf();
      return s.str();
    }
    if (peer_failed(h)) {
      ADD_FAILURE() << "host " << h.peer_role() << " failed before it wrote " << name;
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "host " << h.peer_role() << " did not write " << name << " within "
                << limit.count() << " s";
  return std::nullopt;
}

}  // namespace mdevmig::lab
