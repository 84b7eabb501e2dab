// Lab group "mdevctl": our parents and types through mdevctl, the tool operators use to
// define persistent mdev instances (/etc/mdevctl.d), and the instances it makes used
// the way an operator would, by UUID. `define --auto` instances are started by udev
// when the parent registers (mdev's MDEV_STATE=registered change event, mdevctl's udev
// rule): the test runs systemd-udevd, reloads our module and waits for them.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/process.h"
#include "common/sysfs.h"

#ifndef MDEVMIG_BIN
#error "MDEVMIG_BIN (the mdevmig binary) must be defined"
#endif

namespace mdevmig::lab {
namespace {

using namespace std::chrono_literals;

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Exit mdevctl(const std::vector<std::string>& args) { return run("mdevctl", args); }

bool wait_for(const std::function<bool()>& ok, std::chrono::seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!ok()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(100ms);
  }
  return true;
}

std::string device_dir(const std::string& uuid) { return "/sys/bus/mdev/devices/" + uuid; }

class Mdevctl : public testing::Test {
 protected:
  void SetUp() override {
    MDEVMIG_REQUIRE_LAB();
    parents_ = mdevmig_parents();
    ASSERT_FALSE(parents_.empty()) << "no mdevmig parent";
    ASSERT_EQ(mdevctl({"--version"}).rc, 0)
        << "mdevctl is not installed (scripts/setup.sh --lab installs it)";
  }
  void TearDown() override {
    for (const auto& u : defined_) {
      (void)mdevctl({"stop", "-u", u});
      (void)mdevctl({"undefine", "-u", u});
    }
  }
  // Defines a quarter instance on the first parent; undefined again at the end.
  std::string define(bool autostart) {
    std::string u = random_uuid();
    std::vector<std::string> args = {"define", "-u", u, "-p", parents_[0], "-t", "mdevmig-quarter"};
    if (autostart) args.emplace_back("--auto");
    Exit r = mdevctl(args);
    EXPECT_EQ(r.rc, 0) << r.err;
    defined_.push_back(u);
    return u;
  }
  // An operator's use of two instances: migrate the first's state into the second.
  void migrate(const std::string& from, const std::string& to) {
    Exit r =
        run(MDEVMIG_BIN, {"migrate", "--from", from, "--to", to, "--workload", "bar2", "--json"});
    ASSERT_EQ(r.rc, 0) << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    EXPECT_GE(j.value("iterations", 0), 1) << r.out;
  }

  std::vector<std::string> parents_;
  std::vector<std::string> defined_;
};

TEST_F(Mdevctl, TypesListsOurParentsAndTypes) {
  Exit r = mdevctl({"types"});
  ASSERT_EQ(r.rc, 0) << r.err;
  for (const auto& p : parents_)
    EXPECT_NE(r.out.find(p), std::string::npos) << p << " missing in:\n" << r.out;
  for (const char* t : {"mdevmig-full", "mdevmig-half", "mdevmig-quarter", "mdevmig-eighth"})
    EXPECT_NE(r.out.find(t), std::string::npos) << t << " missing in:\n" << r.out;
  EXPECT_NE(r.out.find("Device API: vfio-pci"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("Available instances: [1-9]"))) << r.out;
}

TEST_F(Mdevctl, DefineStartUseStopUndefine) {
  const std::string a = define(false), b = define(false);
  Exit defined = mdevctl({"list", "--defined"});
  ASSERT_EQ(defined.rc, 0) << defined.err;
  EXPECT_NE(defined.out.find(a), std::string::npos) << defined.out;
  EXPECT_FALSE(exists(device_dir(a))) << "defined, not started";
  for (const auto& u : {a, b}) {
    Exit s = mdevctl({"start", "-u", u});
    ASSERT_EQ(s.rc, 0) << s.err;
    EXPECT_TRUE(exists(device_dir(u)));
  }
  Exit active = mdevctl({"list"});
  EXPECT_NE(active.out.find(a), std::string::npos) << active.out;
  EXPECT_NE(active.out.find("mdevmig-quarter"), std::string::npos) << active.out;
  migrate(a, b);
  for (const auto& u : {a, b}) {
    Exit s = mdevctl({"stop", "-u", u});
    ASSERT_EQ(s.rc, 0) << s.err;
    EXPECT_FALSE(exists(device_dir(u)));
  }
  Exit u = mdevctl({"undefine", "-u", a});
  EXPECT_EQ(u.rc, 0) << u.err;
  EXPECT_EQ(mdevctl({"list", "--defined"}).out.find(a), std::string::npos);
}

// The udev rule mdevctl installs, and the mdevctl it runs. Debian 12's mdevctl 1.2.0
// installs /usr/bin/mdevctl but its rule runs /usr/sbin/mdevctl: there, `--auto` starts
// nothing until an override rule in /etc/udev/rules.d (same file name) names the
// installed binary. The README says so; this test does what it says.
void install_udev_rule_fix() {
  const std::string rule = "/lib/udev/rules.d/60-mdevctl.rules";
  std::ifstream in(rule);
  ASSERT_TRUE(in) << rule;
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  const std::string wanted = "/usr/sbin/mdevctl";
  if (text.find(wanted) == std::string::npos || exists(wanted)) return;
  std::fprintf(
      stderr, "mdevctl's udev rule runs %s, which is missing: overriding it in /etc/udev/rules.d\n",
      wanted.c_str());
  for (std::size_t at; (at = text.find(wanted)) != std::string::npos;)
    text.replace(at, wanted.size(), "/usr/bin/mdevctl");
  ::mkdir("/etc/udev/rules.d", 0755);
  std::ofstream out("/etc/udev/rules.d/60-mdevctl.rules");
  out << text;
  ASSERT_TRUE(out.good());
}

std::string udevd_binary() {
  for (const char* p : {"/usr/lib/systemd/systemd-udevd", "/lib/systemd/systemd-udevd"})
    if (exists(p)) return p;
  return {};
}

TEST_F(Mdevctl, AutoInstancesStartWhenTheModuleLoads) {
  const char* ko = std::getenv("MDEVMIG_KO");
  ASSERT_TRUE(ko) << "MDEVMIG_KO (set by the lab runner)";
  const std::string udevd = udevd_binary();
  ASSERT_FALSE(udevd.empty()) << "no systemd-udevd";
  install_udev_rule_fix();
  if (HasFatalFailure()) return;
  const std::string a = define(true), b = define(true);
  ASSERT_FALSE(exists(device_dir(a))) << "--auto defines; it starts at the next registration";
  ASSERT_EQ(run(udevd, {"--daemon"}).rc, 0);
  struct UdevStop {
    ~UdevStop() { (void)run("udevadm", {"control", "--exit"}); }
  } stop_udevd;
  // The module goes away and comes back, as at boot or after an upgrade.
  ASSERT_EQ(run("rmmod", {"mdevmig"}).rc, 0) << "rmmod mdevmig";
  std::vector<std::string> insmod = {ko};
  if (const char* params = std::getenv("MDEVMIG_KO_PARAMS")) {
    std::istringstream w(params);
    for (std::string p; w >> p;) insmod.push_back(p);
  }
  Exit load = run("insmod", insmod);
  ASSERT_EQ(load.rc, 0) << load.err;
  (void)run("udevadm", {"settle", "--timeout=120"});
  EXPECT_TRUE(wait_for([&] { return exists(device_dir(a)) && exists(device_dir(b)); }, 120s))
      << "the --auto instances did not start; mdevctl list:\n"
      << mdevctl({"list"}).out;
  if (HasFailure()) return;
  migrate(a, b);
}

}  // namespace
}  // namespace mdevmig::lab
