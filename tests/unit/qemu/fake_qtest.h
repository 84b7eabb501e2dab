// A small fake of QEMU's qtest server for host tests: a byte-addressed sparse memory
// (guest RAM, MMIO and ports alike) that answers the qtest commands the clients send.
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/qemu/fake_peer.h"
#include "tools/qtest/codec.h"

namespace mdevmig::qemu::testing {

// Serves qtest commands from a sparse memory until EOF. `hook` may answer a command
// itself (returns true) to script odd replies.
class FakeQtest {
 public:
  std::map<uint64_t, uint8_t> mem;
  std::vector<std::string> log;
  std::function<bool(FakePeer&, const std::string&)> hook;

  void serve(FakePeer& p) {
    while (auto line = p.read_line(std::chrono::seconds(3))) {
      log.push_back(*line);
      if (hook && hook(p, *line)) continue;
      p.send(answer(*line) + "\n");
    }
  }

  /// Executes one command line on the memory and returns the reply (without '\n').
  std::string answer(const std::string& line) { return execute(line); }

 private:
  static uint64_t num(const std::string& s) { return parse_c_uint(s).value_or(~0ull); }
  uint64_t load(uint64_t a, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | mem[a + i];
    return v;
  }
  void store(uint64_t a, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) mem[a + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  std::string execute(const std::string& line) {
    std::istringstream in(line);
    std::string cmd, a, b, c;
    in >> cmd >> a >> b >> c;
    static const std::map<std::string, int> kWidth = {{"b", 1}, {"w", 2}, {"l", 4}, {"q", 8}};
    if ((cmd.rfind("write", 0) == 0 || cmd.rfind("out", 0) == 0) &&
        kWidth.count(cmd.substr(cmd.size() - 1)) && cmd != "write") {
      store(num(a), num(b), kWidth.at(cmd.substr(cmd.size() - 1)));
      return "OK";
    }
    if ((cmd.rfind("read", 0) == 0 || cmd.rfind("in", 0) == 0) &&
        kWidth.count(cmd.substr(cmd.size() - 1)) && cmd != "read") {
      char buf[32];
      std::snprintf(
          buf, sizeof buf, "OK 0x%016llx",
          static_cast<unsigned long long>(load(num(a), kWidth.at(cmd.substr(cmd.size() - 1)))));
      return buf;
    }
    if (cmd == "b64read" || cmd == "read") {
      std::vector<uint8_t> d(num(b));
      for (std::size_t i = 0; i < d.size(); ++i) d[i] = mem[num(a) + i];
      return cmd == "read" ? "OK 0x" + hex_encode(d) : "OK " + base64_encode(d);
    }
    if (cmd == "b64write" || cmd == "write") {
      auto d = cmd == "write" ? hex_decode(c) : base64_decode(c);
      if (!d || d->size() != num(b)) return "FAIL bad data";
      for (std::size_t i = 0; i < d->size(); ++i) mem[num(a) + i] = (*d)[i];
      return "OK";
    }
    if (cmd == "memset") {
      for (uint64_t i = 0; i < num(b); ++i) mem[num(a) + i] = static_cast<uint8_t>(num(c));
      return "OK";
    }
    if (cmd == "irq_intercept_in") return a == "ioapic" ? "OK" : "FAIL Unknown device";
    return "FAIL Unknown command '" + cmd + "'";
  }
};

}  // namespace mdevmig::qemu::testing
