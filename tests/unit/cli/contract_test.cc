// The command line's contract, checked on the real binary: every bad value of every flag
// is a usage error (exit 2, one line naming the flag) found before any device is opened
// or file written; --version, `help CMD`, -h and `--`.
//
// The DEVICE and instance arguments name instances that do not exist, so a command that
// got past its argument checks fails opening them with exit 3: exit 2 proves the value
// was refused first. Every file argument points into an empty directory that must stay
// empty.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tools/cli/args.h"
#include "tools/cli/json_out.h"

#ifndef MDEVMIG_BIN
#error "MDEVMIG_BIN (the mdevmig binary) must be defined"
#endif
#ifndef MDEVMIG_PROJECT_VERSION
#error "MDEVMIG_PROJECT_VERSION (CMake's project version) must be defined"
#endif

extern char** environ;

namespace mdevmig::cli {
namespace {

namespace fs = std::filesystem;

// Instances that exist nowhere (valid UUIDs).
constexpr const char* kNoDevA = "6c1bd2a0-5f3e-4c59-9d0e-000000000a0a";
constexpr const char* kNoDevB = "6c1bd2a0-5f3e-4c59-9d0e-000000000b0b";

struct Outcome {
  int rc = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class Contract : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mdevmig-contract-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    files_ = base_ / "files";
    fs::create_directory(files_);
  }
  void TearDown() override { fs::remove_all(base_); }

  // Runs the binary; stdout and stderr go to files outside files_.
  Outcome run(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    std::string bin = MDEVMIG_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string out = base_ / "stdout", err = base_ / "stderr";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    pid_t pid = -1;
    Outcome r;
    const int e = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) {
      ADD_FAILURE() << "posix_spawn " << bin << ": " << e;
      return r;
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }

  std::string file(const std::string& name) const { return (files_ / name).string(); }
  bool files_untouched() const { return fs::is_empty(files_); }

  fs::path base_, files_;
};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

// ---- bad values ---------------------------------------------------------------------------

struct BadValues {
  std::string flag;                 // as on the command line ("--guest-mem")
  std::vector<std::string> values;  // each one refused
};

struct CommandCase {
  std::vector<std::string> base;  // a complete command line that gets to opening a device
  std::vector<BadValues> flags;
};

std::vector<CommandCase> cases(const std::function<std::string(const std::string&)>& file) {
  const std::vector<std::string> not_uint = {"x", "-1",    "1.5",
                                             "",  "12abc", "99999999999999999999999"};
  const std::vector<std::string> not_size = {
      "x", "-1", "1Q", "", "1.5M", "0x", "99999999999999999999999", "17179869184T"};
  const std::vector<std::string> not_real = {"x", "nan", "inf", "-inf", "", "1e999"};
  auto plus = [](std::vector<std::string> a, std::initializer_list<std::string> b) {
    a.insert(a.end(), b);
    return a;
  };
  // --report: a picture is FILE.html or FILE.svg, in a directory that exists.
  const std::vector<std::string> not_picture = {
      file("r.txt"), file("r"),  file("r.html.txt"), file("r.json"), "", file("no-such-dir/r.html"),
      "/",           "/tmp/.svg"};
  return {
      {{"save", kNoDevA, file("out.mdevmig")},
       {{"--channel", {"v3", "", "auto2"}}, {"--chunk-size", plus(not_size, {"0", "17M", "1T"})}}},
      {{"restore", kNoDevA, file("in.mdevmig")}, {{"--channel", {"v3", ""}}}},
      {{"migrate", "--from", kNoDevA, "--to", kNoDevB},
       {{"--channel", {"v3"}},
        {"--downtime", plus(not_uint, {"2000001"})},
        {"--max-iterations", plus(not_uint, {"4294967296"})},
        {"--max-precopy", plus(not_real, {"-1"})},
        {"--workload", {"cpu", "bar2,", ""}},
        {"--dirty-rate", plus(not_real, {"-0.5", "100.5"})},
        {"--guest-mem", plus(not_size, {"4097", "2T"})},
        {"--guest-iova", {"x", "0x", "0xg000", "-4096", "0x1001", "1Q"}},
        {"--timeout", plus(not_uint, {"0", "86401"})},
        // One process: nothing goes over a network.
        {"--tls", {file("certs")}},
        {"--report", not_picture}}},
      {{"migrate", "--from", kNoDevA, "--to", kNoDevB, "--report", file("r.html")}, {}},
      {{"migrate", "--listen", "127.0.0.1:0", "--to", kNoDevB, "--report", file("r.svg")},
       {{"--report", {file("r.txt")}}}},
      {{"migrate", "--from", kNoDevA, "--to", kNoDevB, "--guest-mem", "4m", "--guest-iova",
        "0x1000"},
       {{"--guest-iova", {"0xfffffffffffff000", "0xfffffffffff00000"}}}},
      {{"migrate", "--from", kNoDevA, "--to", "127.0.0.1:4444"},
       {{"--to", {"127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:x", ":4444", "host:-1"}},
        // TLS credentials are read before any device is opened.
        {"--tls", {"", file("no-such-dir"), "/"}},
        // Only with --tls.
        {"--tls-hostname", {"desthost", ""}},
        // Only for a listener.
        {"--allow-plaintext", {"--verbose"}}}},
      {{"migrate", "--listen", "127.0.0.1:0", "--to", kNoDevB, "--guest-mem", "4M"},
       {{"--to", {"fd:3", "fd:x", "not-a-device"}}}},
      {{"migrate", "--listen", "127.0.0.1:0", "--to", kNoDevB},
       {{"--listen",
         {"x", "127.0.0.1:65536", "127.0.0.1:", ":", "-1",
          // Not loopback, and neither --tls nor --allow-plaintext.
          "0.0.0.0:0", "[::]:0"}},
        {"--tls", {"", file("no-such-dir")}}}},
      {{"qemu-migrate", "--src", kNoDevA, "--dst", kNoDevB, "--workdir", file("work"),
        "--transport", "file", "--file", file("vm.sav")},
       {{"--src", {"not-a-uuid", kNoDevB}},
        {"--dst", {"not-a-uuid", kNoDevA}},
        {"--protocol", {"v3", ""}},
        {"--transport", {"tcp"}},
        {"--irq", {"msix", ""}},
        {"--bandwidth", plus(not_size, {"0"})},
        {"--downtime", plus(not_uint, {"2000001"})},
        {"--passes", plus(not_uint, {"1001"})},
        {"--delay", plus(not_uint, {"3600001"})},
        {"--writes", plus(not_real, {"-1", "1000001"})},
        {"--dma", plus(not_real, {"-1", "1000001"})},
        {"--warmup", plus(not_uint, {"3600001"})},
        {"--after", plus(not_uint, {"3600001"})},
        {"--fault", {"explode", ""}},
        {"--fault-at", plus(not_real, {"0", "1", "-0.5"})},
        {"--guest-mem", plus(not_uint, {"0", "15", "1048577"})},
        {"--guest-fill", plus(not_uint, {"120", "128"})},
        {"--seed", not_uint},
        {"--multifd", plus(not_uint, {"256"})},
        {"--report", not_picture}}},
      {{"qemu-migrate", "--src", kNoDevA, "--dst", kNoDevB, "--report", file("r.SVG")}, {}},
      {{"stress", "--a", kNoDevA, "--b", kNoDevB, "--report", file("report.json")},
       {{"--mode", {"remote", ""}},
        {"--rounds", plus(not_uint, {"0", "1000001"})},
        {"--fault-rate", plus(not_real, {"-0.1", "1.5"})},
        {"--faults", {"explode", "cancel,explode", "cancel,,"}},
        {"--file-rate", plus(not_real, {"-0.1", "2"})},
        {"--a", {"not-a-uuid", kNoDevB}},
        {"--b", {"not-a-uuid", kNoDevA}},
        {"--protocol", {"v3"}},
        {"--irq", {"msix"}},
        {"--bandwidth", plus(not_size, {"0"})},
        {"--downtime", plus(not_uint, {"2000001"})},
        {"--max-passes", plus(not_uint, {"1001"})},
        {"--max-delay", plus(not_uint, {"3600001"})},
        {"--channel", {"v3"}},
        {"--writes", plus(not_real, {"-1", "1000001"})},
        {"--dma", plus(not_real, {"-1", "1000001"})},
        {"--checkpoint-every", plus(not_uint, {"0"})},
        {"--seed", not_uint},
        // stress also writes its JSON report there (FILE.json).
        {"--report",
         {file("r.txt"), file("r"), "", file("no-such-dir/r.json"), file("no-such-dir/r.html"),
          "/"}}}},
      {{"stress", "--a", kNoDevA, "--b", kNoDevB, "--report", file("r.html")}, {}},
  };
}

TEST_F(Contract, EveryCommandLineWithGoodValuesGetsToTheDevice) {
  // The control: without a bad value each base command line passes its checks and fails
  // on the missing instance (exit 3), touching no file.
  for (const auto& c : cases([&](const std::string& n) { return file(n); })) {
    const Outcome r = run(c.base);
    EXPECT_EQ(r.rc, 3) << joined(c.base) << "\n" << r.err;
    EXPECT_TRUE(files_untouched()) << joined(c.base);
  }
}

TEST_F(Contract, EveryBadValueIsAUsageErrorNamingTheFlag) {
  for (const auto& c : cases([&](const std::string& n) { return file(n); })) {
    for (const auto& f : c.flags) {
      for (const auto& v : f.values) {
        std::vector<std::string> args = c.base;
        args.push_back(f.flag);
        args.push_back(v);
        const Outcome r = run(args);
        const std::string what = joined(args) + " (value '" + v + "')";
        EXPECT_EQ(r.rc, 2) << what << "\n" << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << "\n" << r.err;
        EXPECT_NE(r.err.find(f.flag), std::string::npos)
            << what << ": the message does not name " << f.flag << "\n"
            << r.err;
        EXPECT_TRUE(r.out.empty()) << what;
        EXPECT_TRUE(files_untouched()) << what;
        fs::remove_all(files_);
        fs::create_directory(files_);
      }
    }
  }
}

TEST_F(Contract, TheSameDeviceOnBothSidesIsRefused) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"migrate", "--from", kNoDevA, "--to", kNoDevA},
        std::vector<std::string>{"migrate", "--from", kNoDevA, "--to",
                                 std::string("/sys/bus/mdev/devices/") + kNoDevA},
        std::vector<std::string>{"qemu-migrate", "--src", kNoDevA, "--dst", kNoDevA},
        std::vector<std::string>{"stress", "--a", kNoDevA, "--b", kNoDevA}}) {
    const Outcome r = run(args);
    EXPECT_EQ(r.rc, 2) << joined(args) << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// qemu-migrate --no-device runs the VM without the device: every option that only means
// something for the device (given with a valid value) is a usage error naming both flags,
// before QEMU is started or a file written.
TEST_F(Contract, QemuMigrateNoDeviceRefusesTheDeviceOptions) {
  const std::vector<std::vector<std::string>> device_only = {{"--src", kNoDevA},
                                                             {"--dst", kNoDevB},
                                                             {"--type", "full"},
                                                             {"--dst-type", "full"},
                                                             {"--parent", "mdevmig_sim0"},
                                                             {"--protocol", "v2"},
                                                             {"--irq", "msi"},
                                                             {"--writes", "1"},
                                                             {"--dma", "1"},
                                                             {"--warmup", "1"},
                                                             {"--after", "1"},
                                                             {"--fault", "cancel"},
                                                             {"--fault-at", "0.4"},
                                                             {"--seed", "2"},
                                                             {"--switchover-ack"},
                                                             {"--file", file("vm.sav")},
                                                             {"--report", file("r.svg")},
                                                             {"--transport", "file"}};
  for (const auto& opt : device_only) {
    std::vector<std::string> args = {"qemu-migrate", "--no-device", "--workdir", file("work")};
    args.insert(args.end(), opt.begin(), opt.end());
    const Outcome r = run(args);
    EXPECT_EQ(r.rc, 2) << joined(args) << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << joined(args) << "\n" << r.err;
    EXPECT_NE(r.err.find(opt[0] + ":"), std::string::npos) << joined(args) << "\n" << r.err;
    EXPECT_NE(r.err.find("--no-device"), std::string::npos) << joined(args) << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << joined(args);
    EXPECT_TRUE(files_untouched()) << joined(args);
  }
  // The options a VM without the device shares are still checked.
  const Outcome r = run({"qemu-migrate", "--no-device", "--guest-mem", "64", "--guest-fill", "64"});
  EXPECT_EQ(r.rc, 2) << r.err;
  EXPECT_NE(r.err.find("--guest-fill:"), std::string::npos) << r.err;
  // --help says what it verifies.
  const Outcome h = run({"qemu-migrate", "--help"});
  EXPECT_EQ(h.rc, 0);
  EXPECT_NE(h.out.find("--no-device"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("verifies what still applies"), std::string::npos) << h.out;
}

TEST_F(Contract, ReportHelpSaysWhatFileAndThatTheExitStatusStands) {
  for (const char* cmd : {"migrate", "qemu-migrate", "stress"}) {
    const Outcome r = run({cmd, "--help"});
    ASSERT_EQ(r.rc, 0) << cmd;
    for (const char* says :
         {"--report FILE", "FILE.html", "FILE.svg", "never changes the exit status"})
      EXPECT_NE(r.out.find(says), std::string::npos) << cmd << ": " << says << " in\n" << r.out;
  }
}

// ---- errors: one line, what to do, no errno text for what is not a system call --------------

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

TEST_F(Contract, AMissingInstanceSaysSoAndWhereToLook) {
  // Upper case is accepted and means the instance sysfs spells in lower case.
  for (const std::string& dev :
       {std::string(kNoDevA), upper(kNoDevA), std::string("/sys/bus/mdev/devices/") + kNoDevA}) {
    const Outcome r = run({"save", dev, file("out.mdevmig")});
    EXPECT_EQ(r.rc, 3) << dev << "\n" << r.err;
    EXPECT_EQ(r.err, std::string("mdevmig save: open DEVICE: no mdev device ") + kNoDevA +
                         " (see `mdevctl list` or ls /sys/bus/mdev/devices)\n")
        << dev;
    EXPECT_TRUE(files_untouched());
  }
  const Outcome r = run({"migrate", "--from", upper(kNoDevA), "--to", kNoDevB});
  EXPECT_EQ(r.rc, 3) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(std::string("no mdev device ") + kNoDevA), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("No such file"), std::string::npos) << "errno text: " << r.err;
}

TEST_F(Contract, UpperCaseNamesTheSameInstance) {
  const Outcome r = run({"migrate", "--from", kNoDevA, "--to", upper(kNoDevA)});
  EXPECT_EQ(r.rc, 2) << r.err;
  const Outcome q = run({"stress", "--a", upper(kNoDevA), "--b", kNoDevA});
  EXPECT_EQ(q.rc, 2) << q.err;
}

TEST_F(Contract, ADirectoryOrAPipeAsASaveFileIsAUsageError) {
  const std::string dir = (base_ / "a-directory").string();
  const std::string fifo = (base_ / "a-pipe").string();
  fs::create_directory(dir);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const auto& [path, what] :
       {std::pair{dir, "is a directory"}, std::pair{fifo, "is a pipe"}}) {
    // A FIFO with no writer would block an open(): the check must not open it.
    for (const std::vector<std::string>& args : {std::vector<std::string>{"save", kNoDevA, path},
                                                 std::vector<std::string>{"restore", kNoDevA, path},
                                                 std::vector<std::string>{"inspect", path}}) {
      const Outcome r = run(args);
      EXPECT_EQ(r.rc, 2) << joined(args) << "\n" << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      EXPECT_NE(r.err.find(path + "' " + what), std::string::npos) << r.err;
    }
  }
  EXPECT_TRUE(fs::is_directory(dir) && fs::is_empty(dir));
  EXPECT_TRUE(fs::is_fifo(fifo)) << "save must not replace the pipe";
}

// ---- UUID mode ----------------------------------------------------------------------------------

TEST_F(Contract, SaveAndRestoreHelpSayWhatOpeningByUuidDoes) {
  for (const char* cmd : {"save", "restore"}) {
    const Outcome r = run({cmd, "--help"});
    ASSERT_EQ(r.rc, 0) << cmd;
    // The text is wrapped: compare with the line breaks taken out.
    std::string text = r.out;
    std::replace(text.begin(), text.end(), '\n', ' ');
    EXPECT_NE(text.find("opening an instance resets it"), std::string::npos)
        << cmd << ": " << r.out;
    EXPECT_NE(text.find("forgets its state"), std::string::npos) << cmd << ": " << r.out;
    EXPECT_NE(text.find("fd:N"), std::string::npos) << cmd << ": " << r.out;
  }
}

// ---- hold ---------------------------------------------------------------------------------------

TEST_F(Contract, HoldUsageErrorsComeBeforeAnythingIsOpenedOrRun) {
  // CMD would create a file: it must not run.
  const std::string mark = file("ran");
  std::string upper = kNoDevA;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::vector<std::vector<std::string>> cases = {
      {"hold"},
      {"hold", kNoDevA},
      {"hold", kNoDevA, "touch", mark},  // no --
      {"hold", kNoDevA, "--"},           // no command
      {"hold", "--", "touch", mark},     // no instance
      {"hold", "not-a-uuid", "--", "touch", mark},
      {"hold", "fd:3", "--", "touch", mark},
      {"hold", kNoDevA, upper, "--", "touch", mark},  // the same instance twice
      {"hold", "--stop", kNoDevA, "--", "touch", mark},
  };
  for (const auto& c : cases) {
    const Outcome r = run(c);
    EXPECT_EQ(r.rc, 2) << joined(c) << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << joined(c) << ": " << r.err;
    EXPECT_EQ(r.err.rfind("mdevmig hold: usage: ", 0), 0u) << r.err;
  }
  // A missing instance: a device error, and the command does not run either.
  const Outcome m = run({"hold", kNoDevA, "--", "touch", mark});
  EXPECT_EQ(m.rc, 3) << m.err;
  EXPECT_NE(m.err.find("no mdev device " + std::string(kNoDevA)), std::string::npos) << m.err;
  EXPECT_TRUE(files_untouched());
  // After --, -h and --help are CMD's.
  const Outcome h = run({"hold", kNoDevA, "--", "ls", "--help"});
  EXPECT_EQ(h.rc, 3) << h.err;
}

TEST_F(Contract, HoldHelpSaysHowCommandsFindTheHeldInstance) {
  const Outcome r = run({"hold", "--help"});
  ASSERT_EQ(r.rc, 0);
  std::string text = r.out;
  std::replace(text.begin(), text.end(), '\n', ' ');
  for (const char* says :
       {"usage: mdevmig hold UUID... -- CMD [ARGS...]", "MDEVMIG_HELD=", "GROUP_FD", "DEVICE_FD",
        "returned to RUNNING", "SIGTERM", "fd:DEVICE_FD", "Exit status:"})
    EXPECT_NE(text.find(says), std::string::npos) << says << " in " << r.out;
  // And save's and restore's help point to it.
  EXPECT_NE(run({"save", "--help"}).out.find("mdevmig hold"), std::string::npos);
}

// Sets an environment variable for the commands run while it lives.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST_F(Contract, AMalformedOrWrongHeldListIsRefusedNotOpenedAround) {
  {
    // Malformed: a usage error; opening the instance instead would reset a held device.
    const ScopedEnv env("MDEVMIG_HELD", std::string(kNoDevA) + ":x:4");
    const Outcome r = run({"save", kNoDevA, file("out")});
    EXPECT_EQ(r.rc, 2) << r.err;
    EXPECT_NE(r.err.find("MDEVMIG_HELD"), std::string::npos) << r.err;
    const Outcome h = run({"hold", kNoDevB, "--", "true"});
    EXPECT_EQ(h.rc, 2) << h.err;
  }
  {
    // Listed, but this process has no such fds: a device error, nothing written.
    const ScopedEnv env("MDEVMIG_HELD", std::string(kNoDevA) + ":900:901");
    const Outcome r = run({"save", kNoDevA, file("out")});
    EXPECT_EQ(r.rc, 3) << r.err;
    EXPECT_NE(r.err.find(kNoDevA), std::string::npos) << r.err;
  }
  EXPECT_TRUE(files_untouched());
}

// ---- JSON ---------------------------------------------------------------------------------------

std::vector<std::string> keys(const Json& j) {
  std::vector<std::string> k;
  for (const auto& [key, value] : j.items()) k.push_back(key);
  return k;
}

TEST(Json, SaveAndRestoreReportsHaveFixedKeys) {
  engine::SaveReport s;
  s.channel = schema::Channel::kV2StopCopy;
  s.stream_xxh3 = 0xfedcba9876543210ull;  // over 2^53: a JSON number would lose it
  const Json sj = save_json("fd:3", "/tmp/x.mdevmig", s, false);
  EXPECT_EQ(keys(sj), (std::vector<std::string>{"schema_version", "command", "device", "file",
                                                "channel", "stream_bytes", "file_bytes", "chunks",
                                                "stream_xxh3", "seconds", "device_state_after"}));
  EXPECT_EQ(sj["schema_version"], kJsonSchemaVersion);
  EXPECT_EQ(sj["stream_xxh3"], "fedcba9876543210");
  engine::RestoreReport r;
  r.header.created_unix_ns = 1'764'829'880'123'456'789ull;
  r.header.device.uuid = "6c1bd2a0-5f3e-4c59-9d0e-000000000a0a";
  const Json rj = restore_json("fd:3", "/tmp/x.mdevmig", schema::Channel::kV1Region, r, 0.5, true);
  EXPECT_EQ(keys(rj),
            (std::vector<std::string>{"schema_version", "command", "device", "file", "channel",
                                      "stream_bytes", "chunks", "verify_seconds", "restore_seconds",
                                      "source_uuid", "source_created", "device_state_after"}));
  EXPECT_EQ(rj["source_created"], "2025-12-04T06:31:20.123456789Z");
  EXPECT_EQ(rj["device_state_after"], "STOP");
}

TEST(Json, AFileNameThatIsNotUtf8IsReplacedNotThrown) {
  // Linux file names are bytes; JSON text is UTF-8. Every command's document goes
  // through json_document() and json_text(): neither may throw on such a name.
  engine::SaveReport s;
  const std::string name = "/tmp/sa\xffve\xfe.mdevmig";
  std::string text;
  ASSERT_NO_THROW(text = json_text(save_json("fd:3", name, s, false)));
  EXPECT_NE(text.find("/tmp/sa\xef\xbf\xbdve\xef\xbf\xbd.mdevmig"), std::string::npos) << text;
  nlohmann::json body;
  body["file"] = name;
  ASSERT_NO_THROW(text = json_text(json_document("migrate", body)));
  EXPECT_NE(text.find("\"command\": \"migrate\""), std::string::npos) << text;
  EXPECT_NE(text.find("sa\xef\xbf\xbdve"), std::string::npos) << text;
}

TEST_F(Contract, WithJsonUsageAndDeviceErrorsAreJson) {
  const Outcome u = run({"save", "--json", kNoDevA, file("out.mdevmig"), "--chunk-size", "1Q"});
  EXPECT_EQ(u.rc, 2) << u.err;
  const Json uj = Json::parse(u.out, nullptr, false);
  ASSERT_FALSE(uj.is_discarded()) << u.out;
  EXPECT_EQ(keys(uj), (std::vector<std::string>{"schema_version", "command", "error"}));
  EXPECT_EQ(uj["command"], "save");
  EXPECT_EQ(uj["error"]["exit_code"], 2);
  EXPECT_NE(uj["error"]["message"].get<std::string>().find("--chunk-size"), std::string::npos)
      << u.out;
  EXPECT_EQ(std::count(u.err.begin(), u.err.end(), '\n'), 1)
      << "and the one line on stderr: " << u.err;
  const Outcome d = run({"restore", kNoDevA, file("in.mdevmig"), "--json"});
  EXPECT_EQ(d.rc, 3) << d.err;
  const Json dj = Json::parse(d.out, nullptr, false);
  ASSERT_FALSE(dj.is_discarded()) << d.out;
  EXPECT_EQ(dj["error"]["exit_code"], 3);
  // After --, "--json" is a positional, not the flag.
  const Outcome p = run({"inspect", "--", "--json"});
  EXPECT_EQ(p.rc, 3) << p.err;
  EXPECT_TRUE(p.out.empty()) << p.out;
}

// ---- sizes and addresses: one parser --------------------------------------------------------

// The value, or ~0 (and a failure) if refused.
uint64_t size_of(std::string_view text) {
  auto r = parse_size(text);
  EXPECT_TRUE(r.ok()) << text;
  return r.ok() ? *r : ~uint64_t{0};
}

TEST(Sizes, TakeEverySuffixInEitherCaseAndHex) {
  EXPECT_EQ(size_of("64k"), 64u << 10);
  EXPECT_EQ(size_of("64K"), 64u << 10);
  EXPECT_EQ(size_of("32m"), 32u << 20);
  EXPECT_EQ(size_of("32M"), 32u << 20);
  EXPECT_EQ(size_of("2g"), 2ull << 30);
  EXPECT_EQ(size_of("1t"), 1ull << 40);
  EXPECT_EQ(size_of("1T"), 1ull << 40);
  EXPECT_EQ(size_of("4MiB"), 4u << 20);
  EXPECT_EQ(size_of("0x1000"), 0x1000u);
  EXPECT_EQ(size_of("0X40000000"), 0x40000000u);
  EXPECT_EQ(size_of("0x10M"), 16u << 20);
  EXPECT_FALSE(parse_size("0x").ok());
  EXPECT_FALSE(parse_size("1.5M").ok());
  EXPECT_FALSE(parse_size("M").ok());
  EXPECT_FALSE(parse_size("16777216T").ok());
}

TEST(Sizes, EveryFlagGoesThroughTheSameParser) {
  Args a("t [options]", "t");
  a.option("size", "SIZE", "a size");
  a.option("addr", "ADDR", "an address");
  const char* argv[] = {"--size", "32m", "--addr", "0x40000000"};
  ASSERT_TRUE(a.parse(argv).ok());
  EXPECT_EQ(a.get_size("size").value(), 32u << 20);
  EXPECT_EQ(a.get_address("addr", 4096).value(), 0x40000000u);
}

// ---- --version, help, -h, -- --------------------------------------------------------------------

TEST_F(Contract, VersionIsTheProjectVersion) {
  for (const char* flag : {"--version", "-V"}) {
    const Outcome r = run({flag});
    EXPECT_EQ(r.rc, 0) << flag << r.err;
    EXPECT_EQ(r.out, std::string("mdevmig ") + MDEVMIG_PROJECT_VERSION + "\n") << flag;
  }
}

TEST_F(Contract, HelpCommandIsTheCommandsHelpAndHWorksEverywhere) {
  const Outcome top = run({"--help"});
  EXPECT_EQ(top.rc, 0);
  for (const char* cmd :
       {"save", "restore", "inspect", "hold", "migrate", "qemu-migrate", "stress"}) {
    const Outcome long_help = run({cmd, "--help"});
    ASSERT_EQ(long_help.rc, 0) << cmd;
    ASSERT_NE(long_help.out.find(std::string("usage: mdevmig ") + cmd), std::string::npos)
        << long_help.out;
    const Outcome via_help = run({"help", cmd});
    EXPECT_EQ(via_help.rc, 0) << cmd;
    EXPECT_EQ(via_help.out, long_help.out) << "mdevmig help " << cmd;
    const Outcome h = run({cmd, "-h"});
    EXPECT_EQ(h.rc, 0) << cmd;
    EXPECT_EQ(h.out, long_help.out) << cmd << " -h";
    EXPECT_NE(long_help.out.find("-h, --help"), std::string::npos)
        << cmd << ": --help does not mention -h";
  }
  const Outcome h = run({"-h"});
  EXPECT_EQ(h.rc, 0);
  EXPECT_EQ(h.out, top.out);
  const Outcome unknown = run({"help", "nosuchcommand"});
  EXPECT_EQ(unknown.rc, 2);
  EXPECT_NE(unknown.err.find("nosuchcommand"), std::string::npos);
}

TEST_F(Contract, DoubleDashEndsOptions) {
  // After --, a FILE may start with a dash: inspect then tries to open it (exit 3, no
  // such file), instead of refusing an unknown option (exit 2).
  const Outcome r = run({"inspect", "--", "--no-such-file"});
  EXPECT_EQ(r.rc, 3) << r.err;
  EXPECT_NE(r.err.find("--no-such-file"), std::string::npos) << r.err;
  // An option after -- is a positional too: save gets three positionals (usage).
  const Outcome s = run({"save", kNoDevA, "--", file("out"), "--stop"});
  EXPECT_EQ(s.rc, 2) << s.err;
  EXPECT_NE(s.err.find("--stop"), std::string::npos) << s.err;
  // And options before -- still count.
  const Outcome h = run({"save", "--channel", "v3", "--", kNoDevA, file("out")});
  EXPECT_EQ(h.rc, 2) << h.err;
  EXPECT_NE(h.err.find("--channel"), std::string::npos) << h.err;
  EXPECT_TRUE(files_untouched());
}

TEST(Args, DoubleDashMakesTheRestPositional) {
  Args a("t A B", "t");
  a.positional("A", "a");
  a.positional("B", "b");
  a.flag("json", "j");
  const char* argv[] = {"--json", "--", "--x", "-h"};
  ASSERT_TRUE(a.parse(argv).ok());
  EXPECT_FALSE(a.help_requested());
  EXPECT_EQ(a.get("A"), "--x");
  EXPECT_EQ(a.get("B"), "-h");
  EXPECT_TRUE(a.has("json"));
}

}  // namespace
}  // namespace mdevmig::cli
