// Lab group "two_hosts": two lab hosts (tools/lab/pair.sh), each with its own kernel,
// module and instances, joined by a network that exists only between them. The same
// executable runs on both; MDEVMIG_LAB_ROLE says which side it is. The hosts rendezvous
// through files in the shared folder (MDEVMIG_LAB_SHARE): a listening port, a device's
// state as text (common/device_state.h), or that a side failed.
//
//   host a                                      host b
//   scribbles an instance                       migrate --listen 192.0.2.2:0 --to fd:X
//   migrate --from fd:X --to b:PORT             the instance runs with a's state
//     with a live bar2 workload (pre-copy)
//   migrate --listen 192.0.2.1:0 --to fd:Y      migrate --from fd:X --to a:PORT, bar2 workload
//   the instance runs with b's last state
// The way there runs over TLS (kernel TLS; host a makes the test certificates in the
// shared folder, naming both addresses), the way back over plain TCP, which a listener
// on a non-loopback address accepts only with --allow-plaintext.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "common/device_state.h"
#include "common/open_instance.h"
#include "common/pair.h"
#include "common/process.h"
#include "common/sysfs.h"

#ifndef MDEVMIG_BIN
#error "MDEVMIG_BIN (the mdevmig binary) must be defined"
#endif
#ifndef MDEVMIG_MAKE_TLS_CERTS
#error "MDEVMIG_MAKE_TLS_CERTS (tests/unit/migration/make_tls_certs.sh) must be defined"
#endif

namespace mdevmig::lab {
namespace {

using namespace std::chrono_literals;
using vfio::MigState;

constexpr uint64_t kQuarter = 16u << 20;  // a quarter of the default 64 MiB sim parent

// A report that parsed: the command succeeded and printed its JSON.
bool parsed(const nlohmann::json& j) { return !j.is_null() && !j.is_discarded(); }

Proc spawn(const std::vector<std::string>& args, const std::vector<int>& keep_fds) {
  return lab::spawn(MDEVMIG_BIN, args, keep_fds);
}
std::string fd_arg(const OpenInstance& s) { return "fd:" + std::to_string(s.dev().fd()); }

// The destination: listens on this host's address, tells the peer the port (file
// `port_file`), loads into `dst`. Its JSON report.
// `tls`: the credentials directory, or empty for plain TCP.
nlohmann::json receive(const PairHost& h, const OpenInstance& dst, const std::string& port_file,
                       const std::string& tls) {
  std::vector<std::string> args = {"migrate", "--listen",  h.addr + ":0",
                                   "--to",    fd_arg(dst), "--json"};
  if (tls.empty()) {
    args.emplace_back("--allow-plaintext");
  } else {
    args.insert(args.end(), {"--tls", tls});
  }
  Proc p = spawn(args, {dst.dev().fd()});
  std::string err;
  auto line = wait_for_line(p.err, "listening on " + h.addr + ":", err, 120s);
  EXPECT_TRUE(line) << err;
  if (!line) {
    wait(p, err);
    return {};
  }
  put(h, port_file, line->substr(line->rfind(':') + 1));
  // A source that failed never connects: stop listening then, not at the accept timeout.
  std::atomic<bool> done{false};
  std::thread watch([&] {
    while (!done) {
      if (peer_failed(h)) {
        ::kill(p.pid, SIGTERM);
        return;
      }
      std::this_thread::sleep_for(200ms);
    }
  });
  Exit d = wait(p, err);
  done = true;
  watch.join();
  EXPECT_EQ(d.rc, 0) << d.err;
  return d.json();
}

// The source: waits for the peer's port, migrates `src` there with a live bar2 workload
// and three pre-copy passes (--downtime 0: a converging estimate would switch over after
// the first on a quiet machine).
nlohmann::json send(const PairHost& h, const OpenInstance& src, const std::string& port_file,
                    const std::string& tls) {
  auto port = take(h, port_file, 600s);
  if (!port) return {};
  std::vector<std::string> args = {
      "migrate",      "--from", fd_arg(src),  "--to", h.peer + ":" + *port, "--workload", "bar2",
      "--dirty-rate", "5",      "--downtime", "0",    "--max-iterations",   "3",          "--json"};
  if (!tls.empty()) args.insert(args.end(), {"--tls", tls});
  Proc p = spawn(args, {src.dev().fd()});
  Exit s = wait(p);
  EXPECT_EQ(s.rc, 0) << s.err;
  return s.json();
}

class TwoHosts : public testing::Test {
 protected:
  void SetUp() override {
    MDEVMIG_REQUIRE_LAB();
    if (!h_.valid())
      GTEST_FAIL() << "no pair environment (MDEVMIG_LAB_ROLE etc.): run under tools/lab/pair.sh";
    // The lab's module loader cannot load crypto modules on demand: load kernel TLS's own.
    ASSERT_EQ(std::system("modprobe -a tls gcm ghash_generic ctr"), 0)
        << "kernel TLS (modules tls, gcm) is needed";
    // Host a makes the certificates where b reads them (the shared folder).
    tls_ = h_.share + "/tls";
    if (h_.role == "a") {
      const std::string cmd = "rm -rf " + tls_ + " && " MDEVMIG_MAKE_TLS_CERTS " " + tls_ +
                              " IP:192.0.2.1 IP:192.0.2.2 >/dev/null";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << "making test certificates failed";
      put(h_, "certs", "1");
    } else {
      ASSERT_TRUE(take(h_, "certs", 600s)) << "host a made no certificates";
    }
  }
  std::string tls_;
  void TearDown() override {
    if (HasFailure()) put(h_, h_.role + ".failed", "1");
  }
  PairHost h_ = pair_host();
};

TEST_F(TwoHosts, MigrateFromAToBAndBackWithALiveWorkload) {
  OpenInstance x = open_instance("quarter");
  ASSERT_TRUE(x.m);
  if (h_.role == "a") {
    scribble(x.dev(), kQuarter, 41);
    auto there = send(h_, x, "b-port", tls_ + "/good");
    ASSERT_TRUE(parsed(there));
    EXPECT_EQ(there["iterations"].get<int>(), 3) << "three pre-copy passes: " << there.dump();
    EXPECT_EQ(there["tls"]["version"], "TLS1.3") << there.dump();
    EXPECT_EQ(state(x.dev()), MigState::kStop) << "a migrated source stays stopped";
    // What the workload left is what b must run with.
    put(h_, "a-sent", fingerprint(x.dev(), kQuarter));

    OpenInstance y = open_instance("quarter");
    ASSERT_TRUE(y.m);
    auto back = receive(h_, y, "a-port", "");
    ASSERT_TRUE(parsed(back));
    EXPECT_EQ(state(y.dev()), MigState::kRunning);
    auto sent = take(h_, "b-sent", 600s);
    ASSERT_TRUE(sent);
    EXPECT_EQ(fingerprint(y.dev(), kQuarter), *sent) << "the state b sent back";
  } else {
    auto here = receive(h_, x, "b-port", tls_ + "/good");
    ASSERT_TRUE(parsed(here));
    EXPECT_EQ(state(x.dev()), MigState::kRunning);
    auto sent = take(h_, "a-sent", 600s);
    ASSERT_TRUE(sent);
    EXPECT_EQ(fingerprint(x.dev(), kQuarter), *sent) << "the state a sent";

    auto back = send(h_, x, "a-port", "");
    ASSERT_TRUE(parsed(back));
    EXPECT_EQ(back["iterations"].get<int>(), 3) << "three pre-copy passes: " << back.dump();
    EXPECT_TRUE(back["tls"].is_null()) << "the way back is plain TCP: " << back.dump();
    EXPECT_EQ(state(x.dev()), MigState::kStop);
    put(h_, "b-sent", fingerprint(x.dev(), kQuarter));
  }
}

}  // namespace
}  // namespace mdevmig::lab
