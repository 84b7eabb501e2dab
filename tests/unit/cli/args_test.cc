#include "tools/cli/args.h"
#include "tools/cli/device_arg.h"

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

namespace mdevmig::cli {
namespace {

TEST(Progress, TheLineFitsTheTerminalAndShowsRateAndEta) {
  for (std::size_t width : {20u, 40u, 79u, 132u, 300u}) {
    const std::string l = progress_line("save 6c1bd2a0-5f3e-4c59-9d0e-000000000a0a", 3ull << 30,
                                        8ull << 30, 12.0, width);
    EXPECT_LE(l.size(), width) << l;
  }
  const std::string wide = progress_line("save X", 3ull << 30, 8ull << 30, 12.0, 132);
  EXPECT_NE(wide.find("3.0 GiB of 8.0 GiB"), std::string::npos) << wide;
  EXPECT_NE(wide.find("256.0 MiB/s"), std::string::npos) << wide;
  EXPECT_NE(wide.find("ETA 20 s"), std::string::npos) << wide;
  EXPECT_NE(wide.find("[###########...................] "), std::string::npos)
      << "a 30-column bar: " << wide;
  // The bar gives way first.
  const std::string narrow = progress_line("save X", 3ull << 30, 8ull << 30, 12.0, 60);
  EXPECT_EQ(narrow.find('['), std::string::npos) << narrow;
  EXPECT_NE(narrow.find("ETA 20 s"), std::string::npos) << narrow;
  // Width 0 (plain lines for logs): never cut. Unknown total: no bar, no ETA.
  const std::string plain = progress_line("restore X", 5ull << 20, 0, 2.0, 0);
  EXPECT_EQ(plain, "restore X 5.0 MiB, 2.5 MiB/s");
  EXPECT_EQ(progress_line("x", 0, 0, 0, 0), "x 0 B");
  EXPECT_NE(progress_line("x", 1, 1ull << 40, 1.0, 0).find("ETA "), std::string::npos);
}

}  // namespace
}  // namespace mdevmig::cli
