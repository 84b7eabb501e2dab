// The frame of every subcommand (tools/cli/context.h): --help, a bad command line, the
// exit code of an error, --json errors, the cancel token, and a command that takes its
// arguments raw (hold).
#include "tools/cli/context.h"

#include <cerrno>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "migration/schema/codec.h"

namespace mdevmig::cli {
namespace {

Args test_args() {
  Args a("test FILE [options]", "A command for the tests.");
  a.positional("FILE", "a file");
  a.option("size", "SIZE", "a size", "4K");
  a.flag("json", "print JSON");
  return a;
}

// What the body saw and what it should return; the bodies are plain functions, so the
// test hands them this through a global.
struct Seen {
  int calls = 0;
  bool json = false;
  bool cancel = false;
  std::string file;
  std::vector<std::string> argv;
  int (*result)(Context& ctx) = nullptr;
};
Seen g_seen;

int record(Context& ctx) {
  ++g_seen.calls;
  g_seen.json = ctx.json();
  g_seen.cancel = ctx.cancel() != nullptr;
  g_seen.file = ctx.args().get("FILE").value_or("");
  g_seen.argv.assign(ctx.argv().begin(), ctx.argv().end());
  return g_seen.result ? g_seen.result(ctx) : kExitOk;
}

constexpr Command kTest{
    .name = "test", .summary = "for the tests", .declare = test_args, .run = record};

// One run, its stdout, stderr and exit code.
struct Outcome {
  int code;
  std::string out, err;
};

Outcome run(const Command& cmd, std::vector<const char*> argv, int (*result)(Context&) = nullptr) {
  g_seen = Seen{};
  g_seen.result = result;
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  const int code = run_command(cmd, argv);
  Outcome o{code, testing::internal::GetCapturedStdout(), testing::internal::GetCapturedStderr()};
  set_json_errors(false);
  return o;
}

TEST(Context, HelpPrintsTheUsageAndDoesNotRunTheBody) {
  for (const char* help : {"--help", "-h"}) {
    const Outcome o = run(kTest, {"f", help});
    EXPECT_EQ(o.code, kExitOk);
    EXPECT_EQ(o.out, test_args().usage());
    EXPECT_EQ(o.err, "");
    EXPECT_EQ(g_seen.calls, 0);
  }
}

TEST(Context, ParsedArgumentsReachTheBody) {
  const Outcome o = run(kTest, {"a.sav", "--size", "8K"});
  EXPECT_EQ(o.code, kExitOk);
  EXPECT_EQ(g_seen.calls, 1);
  EXPECT_EQ(g_seen.file, "a.sav");
  EXPECT_FALSE(g_seen.json);
  EXPECT_FALSE(g_seen.cancel) << "not a cancellable command";
}

TEST(Context, UnknownOptionIsAUsageError) {
  const Outcome o = run(kTest, {"a.sav", "--bogus"});
  EXPECT_EQ(o.code, kExitUsage);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "mdevmig test: usage: unknown option --bogus\n");
  EXPECT_EQ(g_seen.calls, 0);
}

TEST(Context, MissingArgumentIsAUsageError) {
  const Outcome o = run(kTest, {});
  EXPECT_EQ(o.code, kExitUsage);
  EXPECT_EQ(o.err, "mdevmig test: usage: missing FILE\n");
}

TEST(Context, ErrorsMapToTheirExitCodes) {
  struct Case {
    int (*body)(Context&);
    int code;
  };
  const Case cases[] = {
      {[](Context& c) { return c.fail(Error::make(ENODEV, "open DEVICE", "gone")); }, kExitDevice},
      {[](Context& c) { return c.fail(Error::make(schema::kCorruptErrno, "read", "bad chunk")); },
       kExitCorrupt},
      {[](Context& c) { return c.fail(Error::make(EINTR, "save", "interrupted")); },
       kExitInterrupted},
      {[](Context& c) { return c.fail(Error::make(ECONNRESET, "recv", "peer")); }, kExitFailed},
      {[](Context& c) { return c.usage("--size", "wants a size"); }, kExitUsage},
  };
  for (const auto& c : cases) {
    const Outcome o = run(kTest, {"a.sav"}, c.body);
    EXPECT_EQ(o.code, c.code) << o.err;
    EXPECT_TRUE(o.err.starts_with("mdevmig test: ")) << o.err;
    EXPECT_EQ(o.out, "") << "no --json";
  }
  EXPECT_EQ(run(kTest, {"a.sav"}, [](Context& c) { return c.usage("--size", "wants a size"); }).err,
            "mdevmig test: usage: --size: wants a size\n");
}

TEST(Context, JsonAnswersErrorsInJson) {
  const Outcome o = run(kTest, {"a.sav", "--json"}, [](Context& c) {
    return c.fail(Error::make(ENODEV, "open DEVICE", "gone"));
  });
  EXPECT_TRUE(g_seen.json);
  EXPECT_EQ(o.code, kExitDevice);
  const auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["schema_version"], kJsonSchemaVersion);
  EXPECT_EQ(j["command"], "test");
  EXPECT_EQ(j["error"]["exit_code"], kExitDevice);
  EXPECT_EQ(j["error"]["operation"], "open DEVICE");
  EXPECT_NE(o.err, "") << "the line on stderr stays";
}

TEST(Context, JsonAnswersABadCommandLineInJson) {
  const Outcome o = run(kTest, {"--json", "--bogus"});
  EXPECT_EQ(o.code, kExitUsage);
  const auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["error"]["exit_code"], kExitUsage);
  EXPECT_EQ(j["error"]["operation"], "usage");
}

TEST(Context, JsonAfterTheEndOfOptionsIsAnArgument) {
  const Outcome o = run(kTest, {"--", "--json"}, [](Context& c) {
    return c.fail(Error::make(ENODEV, "open DEVICE", "gone"));
  });
  EXPECT_EQ(g_seen.file, "--json");
  EXPECT_FALSE(g_seen.json);
  EXPECT_EQ(o.code, kExitDevice);
  EXPECT_EQ(o.out, "");
}

TEST(Context, CancellableCommandGetsACancelToken) {
  Command c = kTest;
  c.cancellable = true;
  const Outcome o = run(c, {"a.sav"});
  EXPECT_EQ(o.code, kExitOk);
  EXPECT_TRUE(g_seen.cancel);
}

TEST(Context, RawArgumentsAreNotParsedAndHelpOnlyCountsBeforeTheEnd) {
  Command c = kTest;
  c.raw_args = true;
  Outcome o = run(c, {"x", "--", "cmd", "--help"});
  EXPECT_EQ(o.code, kExitOk);
  EXPECT_EQ(g_seen.calls, 1);
  EXPECT_EQ(g_seen.argv, (std::vector<std::string>{"x", "--", "cmd", "--help"}));
  o = run(c, {"x", "-h", "--", "cmd"});
  EXPECT_EQ(o.code, kExitOk);
  EXPECT_EQ(g_seen.calls, 0);
  EXPECT_EQ(o.out, test_args().usage());
}

}  // namespace
}  // namespace mdevmig::cli
