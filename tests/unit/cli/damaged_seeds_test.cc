// inspect's damaged-file reader (tools/cli/inspect_damaged.h) on the committed seeds of
// its fuzzer (tests/fuzz/corpus/cli_inspect_damaged_fuzz, written by migration_seedgen):
// the valid seed verifies and the reader finds nothing wrong with it; each damaged one is
// refused by the verifying reader, and the damaged-file reader says where and why.
#include "tools/cli/inspect_damaged.h"

#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#ifndef MDEVMIG_CORPUS_DIR
#error "MDEVMIG_CORPUS_DIR (tests/fuzz/corpus) must be defined"
#endif

namespace mdevmig::cli {
namespace {

namespace fs = std::filesystem;

std::vector<std::byte> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> v{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const auto b = std::as_bytes(std::span(v));
  return {b.begin(), b.end()};
}

// The verifying reader's verdict (restore's and inspect's first pass): "" or the error.
std::string verify(std::span<const std::byte> bytes, int* errnum) {
  UniqueFd fd(::memfd_create("seed", MFD_CLOEXEC));
  if (!fd ||
      ::pwrite(fd.get(), bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()))
    return "memfd";
  auto scanner = engine::FileScanner::open(fd.get(), "seed");
  if (!scanner.ok()) {
    *errnum = scanner.error().errnum;
    return scanner.error().message();
  }
  auto sum = engine::verify_file(*scanner, {});
  if (!sum.ok()) {
    *errnum = sum.error().errnum;
    return sum.error().message();
  }
  return {};
}

std::map<std::string, fs::path> seeds() {
  std::map<std::string, fs::path> out;
  for (const auto& e :
       fs::directory_iterator(fs::path(MDEVMIG_CORPUS_DIR) / "cli_inspect_damaged_fuzz"))
    if (e.is_regular_file()) out[e.path().filename().string()] = e.path();
  return out;
}

TEST(DamagedSeeds, TheValidSeedVerifiesAndTheReaderFindsNothingWrong) {
  const auto all = seeds();
  ASSERT_TRUE(all.contains("valid_four_pages"));
  const auto bytes = slurp(all.at("valid_four_pages"));
  int errnum = 0;
  EXPECT_EQ(verify(bytes, &errnum), "");
  const Salvage s = salvage(bytes, "seed");
  EXPECT_TRUE(s.clean()) << json_text(damaged_json("seed", s, ""));
  EXPECT_GE(s.chunks.size(), 3u);
  ASSERT_TRUE(s.trailer);
  EXPECT_EQ(s.trailer->chunks, s.chunks.size());
}

TEST(DamagedSeeds, EachDamagedSeedIsRefusedAndTheReaderSaysWhereAndWhy) {
  const auto all = seeds();
  // What the reader must report for each damage.
  const std::map<std::string, std::function<std::string(const Salvage&)>> expect = {
      {"truncated_in_header", [](const Salvage& s) { return s.header_problem; }},
      {"truncated_in_chunk",
       [](const Salvage& s) {
         return s.chunks.empty() || !s.chunks[0].problem.empty() ? "" : s.end_problem;
       }},
      {"truncated_before_trailer",
       [](const Salvage& s) {
         return s.bad_chunks() == 0 && s.chunks.size() >= 3 ? s.end_problem : "";
       }},
      {"flipped_preamble", [](const Salvage& s) { return s.preamble_problem; }},
      {"flipped_header", [](const Salvage& s) { return s.header_problem; }},
      {"flipped_chunk_table",
       [](const Salvage& s) {
         if (s.chunks.empty() || !s.chunks[0].problem.empty()) return std::string();
         return s.end_problem.empty() && s.chunks.size() > 1 ? s.chunks[1].problem : s.end_problem;
       }},
      {"flipped_chunk_payload",
       [](const Salvage& s) {
         return s.bad_chunks() == 1 && s.trailer && s.chunks.size() > 1 ? s.chunks[1].problem : "";
       }},
      {"flipped_trailer",
       [](const Salvage& s) {
         if (s.bad_chunks() > 0 && s.chunks.back().problem.empty()) return std::string();
         return s.trailer ? s.trailer_problem : s.chunks.back().problem + s.end_problem;
       }},
  };
  for (const auto& [name, want] : expect) {
    ASSERT_TRUE(all.contains(name)) << name << " is not committed";
    const auto bytes = slurp(all.at(name));
    int errnum = 0;
    EXPECT_NE(verify(bytes, &errnum), "") << name << " verifies";
    EXPECT_TRUE(errnum == schema::kCorruptErrno || errnum == schema::kIncompatibleErrno)
        << name << ": errno " << errnum;
    const Salvage s = salvage(bytes, "seed");
    EXPECT_FALSE(s.clean()) << name;
    EXPECT_NE(want(s), "") << name << ": " << json_text(damaged_json("seed", s, ""));
    if (name.starts_with("truncated")) {
      EXPECT_NE(json_text(damaged_json("seed", s, "")).find("truncated"), std::string::npos)
          << name;
    }
  }
  for (const auto& [name, path] : all)
    EXPECT_TRUE(name == "valid_four_pages" || expect.contains(name))
        << name << ": a seed nothing checks";
}

TEST(DamagedSeeds, TextThatIsNotUtf8IsReportedNotThrown) {
  // A damaged header's hostname can hold any bytes; --json prints them replaced.
  Json j = json_document("inspect");
  j["hostname"] = std::string("ho\xff\xfest");
  std::string text;
  ASSERT_NO_THROW(text = json_text(j));
  EXPECT_NE(text.find("ho\xef\xbf\xbd"), std::string::npos) << text;
}

}  // namespace
}  // namespace mdevmig::cli
