// The command line's contract, checked on the real binary: --version, `help CMD`, -h
// and `--`.
//
// The DEVICE arguments name instances that do not exist, so a command that got past its
// argument checks fails opening them with exit 3. Every file argument points into an
// empty directory that must stay empty.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tools/cli/args.h"

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

// An instance that exists nowhere (a valid UUID).
constexpr const char* kNoDevA = "6c1bd2a0-5f3e-4c59-9d0e-000000000a0a";

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
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
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

// ---- --version, help, -h, -- ---------------------------------------------------------------------

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
  for (const char* cmd : {"save", "restore", "inspect", "migrate", "qemu-migrate", "stress"}) {
    const Outcome long_help = run({cmd, "--help"});
    ASSERT_EQ(long_help.rc, 0) << cmd;
    ASSERT_NE(long_help.out.find(std::string("usage: mdevmig ") + cmd), std::string::npos) << long_help.out;
    const Outcome via_help = run({"help", cmd});
    EXPECT_EQ(via_help.rc, 0) << cmd;
    EXPECT_EQ(via_help.out, long_help.out) << "mdevmig help " << cmd;
    const Outcome h = run({cmd, "-h"});
    EXPECT_EQ(h.rc, 0) << cmd;
    EXPECT_EQ(h.out, long_help.out) << cmd << " -h";
    EXPECT_NE(long_help.out.find("-h, --help"), std::string::npos) << cmd << ": --help does not mention -h";
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
