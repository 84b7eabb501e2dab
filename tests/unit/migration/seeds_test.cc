// The committed fuzz seeds (tests/fuzz/corpus/) are inputs the decoders accept: a seed
// that is refused only exercises the rejection path, and a format change that leaves
// the seeds behind fails here. Each seed is checked through the code the fuzzer drives
// (FileScanner and the stream decoder, the wire decoder, the device model's loader), and
// the generators of this tree (tests/fuzz/*/seedgen.cc) must write the same seeds.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "migration/engine/savefile.h"
#include "sim.h"
#include "tools/devstream/stream_decode.h"

#ifndef MDEVMIG_CORPUS_DIR
#error "MDEVMIG_CORPUS_DIR (tests/fuzz/corpus) must be defined"
#endif
#ifndef MDEVMIG_MIGRATION_SEEDGEN
#error "MDEVMIG_MIGRATION_SEEDGEN (the migration_seedgen binary) must be defined"
#endif
#ifndef MDEVMIG_VENDOR_SEEDGEN
#error "MDEVMIG_VENDOR_SEEDGEN (the vendor_seedgen binary) must be defined"
#endif

namespace mdevmig::engine {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = MDEVMIG_CORPUS_DIR;

std::vector<uint8_t> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The seeds of one fuzzer, by file name.
std::map<std::string, fs::path> seeds(const fs::path& corpus, const char* fuzzer) {
  std::map<std::string, fs::path> out;
  for (const auto& e : fs::directory_iterator(corpus / fuzzer))
    if (e.is_regular_file()) out[e.path().filename().string()] = e.path();
  return out;
}

// A save file read as the fuzzer and `inspect` read it; the error, or "" and the summary.
std::string read_save_file(const fs::path& p, FileSummary* out = nullptr) {
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "open failed";
  auto scanner = FileScanner::open(fd.get(), p.string());
  if (!scanner.ok()) return scanner.error().message();
  devstream::StreamDecoder decoder;
  auto sum =
      verify_file(*scanner, [&](const schema::ChunkView& c) { decoder.feed(c.data, c.phase); });
  if (!sum.ok()) return sum.error().message();
  const devstream::StreamSummary s = decoder.finish();
  if (!s.problem.empty()) return "device stream: " + s.problem;
  if (!s.ended) return "device stream: no END record";
  if (out) *out = std::move(*sum);
  return {};
}

// The messages of a wire seed, cut as the fuzzer cuts them; the error or "".
std::string read_wire(const std::vector<uint8_t>& bytes,
                      std::vector<schema::WireMessage::Kind>* kinds) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size());
  std::vector<uint64_t> aligned;
  while (!in.empty()) {
    auto n = schema::frame_size(in, schema::kMaxFrameBytes);
    if (!n.ok()) return n.error().message();
    if (!n->has_value() || **n > in.size()) return "ends inside a message";
    aligned.assign((**n + 7) / 8, 0);
    std::memcpy(aligned.data(), in.data(), **n);
    auto m = schema::decode_wire(std::span(reinterpret_cast<const std::byte*>(aligned.data()), **n),
                                 4096);
    if (!m.ok()) return m.error().message();
    kinds->push_back(m->kind);
    in = in.subspan(**n);
  }
  return {};
}

TEST(Seeds, EverySaveFileSeedVerifiesAndItsStreamDecodes) {
  const auto files = seeds(kCorpus, "migration_container_fuzz");
  ASSERT_FALSE(files.empty());
  for (const auto& [name, path] : files) {
    FileSummary sum;
    EXPECT_EQ(read_save_file(path, &sum), "") << name;
    EXPECT_EQ(sum.header.format_version, schema::kFormatVersion) << name;
    EXPECT_GT(sum.chunks.size(), 1u)
        << name << ": a seed of one chunk leaves the sequence checks unreached";
  }
}

TEST(Seeds, EveryWireSeedDecodesMessageByMessage) {
  const auto files = seeds(kCorpus, "migration_wire_fuzz");
  ASSERT_FALSE(files.empty());
  for (const auto& [name, path] : files) {
    std::vector<schema::WireMessage::Kind> kinds;
    EXPECT_EQ(read_wire(slurp(path), &kinds), "") << name;
    ASSERT_FALSE(kinds.empty()) << name;
    EXPECT_EQ(kinds.front(), schema::WireMessage::Kind::kHello) << name;
  }
}

TEST(Seeds, EveryLoaderSeedLoadsIntoTheFuzzersDevice) {
  // vendor_loader_fuzz's device: 16 KiB, type 3.
  const auto files = seeds(kCorpus, "vendor_loader_fuzz");
  ASSERT_FALSE(files.empty());
  for (const auto& [name, path] : files) {
    vendor_sim::SimDevice d(16 << 10, 3);
    const auto bytes = slurp(path);
    const auto r = d.load(bytes);
    EXPECT_EQ(r.err, 0) << name << ": " << mdevmig_loader_reason_str(r.reason);
  }
}

class Generated : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = (fs::temp_directory_path() / "mdevmig-seeds-XXXXXX").string();
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    dir_ = t;
  }
  void TearDown() override { fs::remove_all(dir_); }

  void generate(const char* bin) {
    const std::string cmd = std::string(bin) + " " + dir_.string();
    const int st = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << cmd;
  }

  fs::path dir_;
};

// The generators of this tree write what is committed: the save files up to their
// header's time and host (the same device, chunks and stream), everything else to the byte.
// After a format change: build/dev/tests/fuzz/migration_seedgen tests/fuzz/corpus.
TEST_F(Generated, CommittedSeedsAreWhatTheGeneratorsWrite) {
  generate(MDEVMIG_MIGRATION_SEEDGEN);
  generate(MDEVMIG_VENDOR_SEEDGEN);
  for (const char* fuzzer :
       {"migration_container_fuzz", "migration_wire_fuzz", "vendor_loader_fuzz", "vendor_mmio_fuzz",
        "cli_inspect_damaged_fuzz"}) {
    const auto fresh = seeds(dir_, fuzzer);
    const auto committed = seeds(kCorpus, fuzzer);
    for (const auto& [name, path] : fresh) {
      ASSERT_TRUE(committed.contains(name))
          << fuzzer << "/" << name << " is generated but not committed";
      // inspect's damaged files: each damage is checked by cli_unit (damaged_seeds_test);
      // here the valid one is compared like the container seeds.
      const bool save_file =
          std::string(fuzzer) == "migration_container_fuzz" ||
          (std::string(fuzzer) == "cli_inspect_damaged_fuzz" && name.starts_with("valid_"));
      if (std::string(fuzzer) == "cli_inspect_damaged_fuzz" && !save_file) continue;
      if (!save_file) {
        EXPECT_EQ(slurp(path), slurp(committed.at(name))) << fuzzer << "/" << name << " is stale";
        continue;
      }
      FileSummary a, b;
      ASSERT_EQ(read_save_file(path, &a), "") << "generated " << name;
      ASSERT_EQ(read_save_file(committed.at(name), &b), "") << "committed " << name;
      EXPECT_EQ(a.trailer.stream_xxh3, b.trailer.stream_xxh3) << name << " is stale";
      EXPECT_EQ(a.chunks.size(), b.chunks.size()) << name << " is stale";
      EXPECT_EQ(a.header.device.compat, b.header.device.compat) << name << " is stale";
    }
  }
}

}  // namespace
}  // namespace mdevmig::engine
