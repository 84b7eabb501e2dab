#include "tools/cli/args.h"

#include <gtest/gtest.h>

namespace mdevmig::cli {
namespace {

Args make() {
  Args a("save DEVICE FILE [options]", "Saves a device.");
  a.positional("DEVICE", "mdev UUID");
  a.positional("FILE", "output file");
  a.positional("EXTRA", "optional", false);
  a.flag("json", "JSON output");
  a.option("chunk", "SIZE", "chunk size", "1M");
  a.option("to", "HOST:PORT", "peer");
  return a;
}

TEST(Args, ParsesPositionalsFlagsAndOptionsInBothForms) {
  Args a = make();
  const char* argv[] = {"uuid", "--json", "--chunk=64K", "out.bin", "--to", "h:1"};
  ASSERT_TRUE(a.parse(argv).ok());
  EXPECT_EQ(a.get("DEVICE"), "uuid");
  EXPECT_EQ(a.get("FILE"), "out.bin");
  EXPECT_FALSE(a.get("EXTRA"));
  EXPECT_TRUE(a.has("json"));
  EXPECT_EQ(a.get_size("chunk").value(), 64u << 10);
  EXPECT_EQ(a.get("to"), "h:1");
}

TEST(Args, FallbacksApplyWhenAbsent) {
  Args a = make();
  const char* argv[] = {"u", "f"};
  ASSERT_TRUE(a.parse(argv).ok());
  EXPECT_EQ(a.get_size("chunk").value(), 1u << 20);
  EXPECT_FALSE(a.has("json"));
  EXPECT_FALSE(a.get("to"));
}

TEST(Args, ErrorsNameTheArgument) {
  const char* missing[] = {"u"};
  const char* unknown[] = {"u", "f", "--nope"};
  const char* novalue[] = {"u", "f", "--to"};
  const char* extra[] = {"u", "f", "e", "g"};
  const char* flagval[] = {"u", "f", "--json=1"};
  for (auto args : {std::span<const char* const>(missing), std::span<const char* const>(unknown),
                    std::span<const char* const>(novalue), std::span<const char* const>(extra),
                    std::span<const char* const>(flagval)}) {
    Args a = make();
    auto r = a.parse(args);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().errnum, EINVAL);
    EXPECT_FALSE(r.error().context.empty());
  }
}

TEST(Args, SizesAndNumbers) {
  EXPECT_EQ(parse_size("4096").value(), 4096u);
  EXPECT_EQ(parse_size("2G").value(), 2ull << 30);
  EXPECT_FALSE(parse_size("").ok());
  EXPECT_FALSE(parse_size("12Q").ok());
  EXPECT_FALSE(parse_size("99999999999999999999").ok());
  EXPECT_FALSE(parse_size("18446744073709551615G").ok());
}

TEST(Args, HelpIsPrintedAndFlagged) {
  Args a = make();
  const char* argv[] = {"--help"};
  ASSERT_TRUE(a.parse(argv).ok());
  EXPECT_TRUE(a.help_requested());
  EXPECT_NE(a.usage().find("--chunk SIZE"), std::string::npos);
  EXPECT_NE(a.usage().find("(default 1M)"), std::string::npos);
}

}  // namespace
}  // namespace mdevmig::cli
