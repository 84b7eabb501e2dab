// Lab group "stress": `mdevmig stress --mode local` on two eighth instances of
// mdevmig_sim0, 20 rounds with every fault kind, run as the binary and judged by its
// exit status and its JSON report: every round verified, the counts add up, each fault
// fired at least once for the fixed seed, and nothing is left behind.
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tools/stress/faults.h"

#ifndef MDEVMIG_BIN
#error "MDEVMIG_BIN (the mdevmig binary) must be defined"
#endif

namespace {

using json = nlohmann::json;
namespace stress = mdevmig::stress;

constexpr int kRounds = 20;

std::set<std::string> mdev_devices() {
  std::set<std::string> out;
  if (DIR* d = ::opendir("/sys/bus/mdev/devices")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') out.insert(e->d_name);
    ::closedir(d);
  }
  return out;
}

// Runs mdevmig with `args`; its exit status (stdout and stderr go to the test log).
int run(const std::vector<std::string>& args) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv{const_cast<char*>(MDEVMIG_BIN)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(MDEVMIG_BIN, argv.data());
    ::_exit(127);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(StressLocal, BoundedRunWithEveryFaultVerifiesEveryRound) {
  if (::access("/sys/class/mdev_bus/mdevmig_sim0", F_OK) != 0)
    GTEST_SKIP() << "mdevmig.ko is not loaded";
  const std::set<std::string> before = mdev_devices();
  const std::string report = "/tmp/lab-stress-report.json";
  const int rc = run({"stress",
                      "--mode",
                      "local",
                      "--rounds",
                      std::to_string(kRounds),
                      "--fault-rate",
                      "0.5",
                      "--faults",
                      stress::fault_list_text(stress::injectable_faults()),
                      "--seed",
                      "7",
                      "--type",
                      "eighth",
                      "--parent",
                      "mdevmig_sim0",
                      "--checkpoint-every",
                      "4",
                      "--writes",
                      "2000",
                      "--dma",
                      "50",
                      "--report",
                      report,
                      "--verbose"});
  EXPECT_EQ(rc, 0) << "mdevmig stress --mode local failed (its summary is above)";
  EXPECT_EQ(mdev_devices(), before) << "instances left behind";

  std::ifstream in(report);
  ASSERT_TRUE(in) << "no report at " << report;
  const json j = json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << "the report is not JSON";
  EXPECT_EQ(j["mode"], "local");
  EXPECT_EQ(j["aborted"], "");
  EXPECT_EQ(j["rounds"], kRounds);
  EXPECT_EQ(j["unverified"], 0);

  // The per-fault table adds up to the totals.
  int rounds = 0, fired = 0, verified = 0;
  std::map<std::string, int> fired_by;
  for (const auto& [name, f] : j["by_fault"].items()) {
    rounds += f["rounds"].get<int>();
    fired += f["fired"].get<int>();
    verified += f["verified"].get<int>();
    fired_by[name] = f["fired"].get<int>();
  }
  EXPECT_EQ(rounds, kRounds);
  EXPECT_EQ(verified, kRounds);
  EXPECT_EQ(fired, j["faults_injected"].get<int>());
  EXPECT_EQ(j["recoveries_verified"], j["faults_injected"]);
  for (stress::FaultKind f : stress::injectable_faults())
    EXPECT_GE(fired_by[stress::fault_name(f)], 1)
        << "fault " << stress::fault_name(f) << " never fired with this seed";

  // Every round: verified, with the survivor its fault calls for; a killed source is
  // recovered from the checkpoint; completed rounds are the downtime sample.
  int completed = 0;
  ASSERT_EQ(j["round_reports"].size(), static_cast<std::size_t>(kRounds));
  for (const auto& r : j["round_reports"]) {
    SCOPED_TRACE("round " + std::to_string(r["round"].get<int>()));
    EXPECT_TRUE(r["verified"].get<bool>()) << r.dump(2);
    EXPECT_TRUE(r["problems"].empty()) << r["problems"].dump();
    const std::string fault = r["fault"], status = r["migration"]["status"],
                      survivor = r["survivor"];
    const bool fault_fired = r["migration"]["fault_fired"];
    if (status == "completed") {
      ++completed;
      EXPECT_EQ(survivor, "destination");
      EXPECT_GT(r["migration"]["device"]["bytes"].get<uint64_t>(), 0u);
    }
    const auto kind = stress::parse_fault(fault);
    ASSERT_TRUE(kind.ok()) << "unknown fault " << fault;
    if (*kind == stress::FaultKind::kNone) {
      EXPECT_EQ(status, "completed");
    }
    // Who holds the VM after a fired fault is the fault table's word (the local driver
    // flips bytes without aiming at device data: blind).
    if (fault_fired) {
      bool known = false;
      for (stress::Survivor s :
           {stress::Survivor::kDestination, stress::Survivor::kSource, stress::Survivor::kNone})
        if (survivor == stress::survivor_name(s)) {
          known = true;
          EXPECT_TRUE(stress::survivor_acceptable(*kind, s, /*blind=*/true))
              << fault << " fired and the VM ended on: " << survivor;
        }
      EXPECT_TRUE(known) << "unknown survivor " << survivor;
    }
    if (fault_fired && stress::expected_survivor(*kind) == stress::Survivor::kNone) {
      EXPECT_TRUE(r["recovered"].get<bool>());
      EXPECT_TRUE(r["recovery_verification"]["ok"].get<bool>());
    }
    if (survivor != "none") {
      EXPECT_TRUE(r["verification"]["ok"].get<bool>());
    }
  }
  EXPECT_EQ(j["downtime_ms"]["count"], completed);
  EXPECT_EQ(j["total_ms"]["count"], completed);
  EXPECT_GT(completed, 0);
}

}  // namespace
