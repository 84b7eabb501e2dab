// `mdevmig inspect` (the built binary) on save files whose container is whole and
// consistent: a good device stream loads in the trial through the device model's
// loader; streams the device would refuse (no END, another geometry than the file's
// compatibility record) are reported "loads: no" with the loader's reason, exit 4.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "migration/engine/savefile.h"
#include "sim_channel.h"

namespace mdevmig::engine {
namespace {

using testing::sim_identity;
using vendor_sim::SimDevice;

constexpr uint64_t kMem = 64 * MDEVMIG_PAGE_SIZE;

// A device whose saved stream is exactly `bytes`.
class BytesChannel final : public Channel {
 public:
  explicit BytesChannel(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
  schema::Channel kind() const override { return schema::Channel::kV2StopCopy; }
  Result<void> start_save(bool) override { return ok(); }
  Result<void> stop_copy() override { return ok(); }
  Result<std::span<const std::byte>> read(std::size_t max) override {
    const std::size_t n = std::min(max, bytes_.size() - pos_);
    std::span<const std::byte> s(reinterpret_cast<const std::byte*>(bytes_.data()) + pos_, n);
    pos_ += n;
    return s;
  }
  Result<uint64_t> pending() override { return bytes_.size() - pos_; }
  Result<void> finish_save(bool) override { return ok(); }
  Result<void> start_resume() override { return ok(); }
  Result<void> write(std::span<const std::byte>) override { return ok(); }
  Result<void> finish_resume(bool) override { return ok(); }
  Recovery recover() override { return {}; }
  std::string state_name() override { return "bytes"; }

 private:
  std::vector<uint8_t> bytes_;
  std::size_t pos_ = 0;
};

struct CliRun {
  int rc = -1;
  std::string out;
};

CliRun inspect_json(const std::string& file) {
  CliRun r;
  const std::string cmd = std::string(MDEVMIG_CLI) + " inspect --json " + file + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The command's exit code and what it wrote to stderr.
CliRun cli_stderr(const std::string& args) {
  CliRun r;
  const std::string cmd = std::string(MDEVMIG_CLI) + " " + args + " 2>&1 >/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// stdout of `mdevmig ARGS`, and its exit code.
CliRun cli_stdout_of(const std::string& args) {
  CliRun r;
  const std::string cmd = std::string(MDEVMIG_CLI) + " " + args + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class InspectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = (std::filesystem::temp_directory_path() / "mdevmig-inspect-XXXXXX").string();
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    dir_ = t;
    for (uint64_t i = 0; i < kMem; ++i) dev_.mem()[i] = static_cast<uint8_t>(i * 7 + 1);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A save file (consistent container) holding `stream`, with `id` in its header.
  std::string save(const char* name, std::vector<uint8_t> stream,
                   const schema::DeviceIdentity& id) {
    std::string path = (dir_ / name).string();
    BytesChannel ch(std::move(stream));
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    SaveOptions opt;
    opt.chunk_size = 16384;
    auto r = save_to_file(ch, id, fd.get(), opt);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return path;
  }

  std::filesystem::path dir_;
  SimDevice dev_{kMem};
};

TEST_F(InspectTest, AGoodStreamLoadsInTheTrial) {
  CliRun r = inspect_json(save("good.mdevmig", dev_.save(), sim_identity(dev_, "good")));
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  const auto& t = j["device_stream"]["trial_load"];
  EXPECT_EQ(t["tried"], true);
  EXPECT_EQ(t["loads"], true) << t.dump();
  EXPECT_EQ(t["outcome"].get<std::string>().rfind("yes", 0), 0u) << t.dump();
}

TEST_F(InspectTest, StreamsTheDeviceWouldRefuseDoNotLoadAndExit4) {
  // Without its END record (whole records, every checksum right).
  std::vector<uint8_t> no_end = dev_.save();
  no_end.resize(no_end.size() - sizeof(mdevmig_rec_hdr));
  // A device of twice the memory, in a file whose compatibility record says kMem.
  SimDevice big(2 * kMem);
  for (const auto& [name, stream] :
       {std::pair{"no-end.mdevmig", no_end}, std::pair{"other.mdevmig", big.save()}}) {
    CliRun r = inspect_json(save(name, stream, sim_identity(dev_, "dev")));
    EXPECT_EQ(r.rc, 4) << name << ": " << r.out;
    const auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << name << ": " << r.out;
    const auto& t = j["device_stream"]["trial_load"];
    EXPECT_EQ(t["tried"], true) << name;
    EXPECT_EQ(t["loads"], false) << name << ": " << t.dump();
    const std::string outcome = t["outcome"];
    EXPECT_EQ(outcome.rfind("no (", 0), 0u) << name << ": " << outcome;
    EXPECT_NE(outcome.find("at stream byte"), std::string::npos) << name << ": " << outcome;
  }
}

TEST_F(InspectTest, AFileOfAnotherDeviceIsNotTried) {
  schema::DeviceIdentity other;
  other.device_api = "vfio-pci";
  CliRun r = inspect_json(save("other-device.mdevmig", {1, 2, 3, 4, 5}, other));
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_TRUE(j["device_stream"].is_null()) << "not an mdevmig stream: no decode, no trial";
}

// A damaged header: one line that says what is wrong with which file, and no errno text
// (no system call failed). restore says the device was not touched, after the reason.
TEST_F(InspectTest, ADamagedHeaderIsReportedInOneLineWithoutErrnoText) {
  const std::string path = save("damaged.mdevmig", dev_.save(), sim_identity(dev_, "dev"));
  {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    const off_t at = static_cast<off_t>(schema::kPreambleBytes + 9);  // inside the header
    uint8_t b = 0;
    ASSERT_EQ(::pread(fd.get(), &b, 1, at), 1);
    b ^= 0x01;
    ASSERT_EQ(::pwrite(fd.get(), &b, 1, at), 1);
  }
  const std::string want = "read save-file header: " + path + ": the header's XXH3 does not match";
  CliRun in = cli_stderr("inspect " + path);
  EXPECT_EQ(in.rc, 4);
  EXPECT_EQ(in.out, "mdevmig inspect: " + want + "\n");
  for (const char* mode : {"", " --single-pass"}) {
    CliRun re =
        cli_stderr(std::string("restore 1c9f4a1e-7d3b-4b8a-9e2f-5a6b7c8d9e0f ") + path + mode);
    EXPECT_EQ(re.rc, 4) << mode;
    EXPECT_EQ(re.out, "mdevmig restore: " + want + " (device not touched)\n") << mode;
  }
}

// A file of another format (here the one before the checksums changed meaning) is
// incompatible, not corrupt: exit 4, one line naming both formats, device not touched.
TEST_F(InspectTest, AFileOfAnotherFormatNamesBothFormats) {
  const std::string path = save("old.mdevmig", dev_.save(), sim_identity(dev_, "dev"));
  {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    const uint32_t old = schema::kFormatVersion - 1;
    ASSERT_EQ(::pwrite(fd.get(), &old, 4, 8), 4);  // the preamble's format field
  }
  const std::string want = "read save-file preamble: " + path + ": save file format " +
                           std::to_string(schema::kFormatVersion - 1) +
                           "; this mdevmig reads format " + std::to_string(schema::kFormatVersion) +
                           " (an older mdevmig wrote it: restore it with that version)";
  CliRun in = cli_stderr("inspect " + path);
  EXPECT_EQ(in.rc, 4);
  EXPECT_EQ(in.out, "mdevmig inspect: " + want + "\n");
  CliRun re = cli_stderr("restore 1c9f4a1e-7d3b-4b8a-9e2f-5a6b7c8d9e0f " + path);
  EXPECT_EQ(re.rc, 4);
  EXPECT_EQ(re.out, "mdevmig restore: " + want + " (device not touched)\n");
}

// ---- the JSON contract -------------------------------------------------------------------------

std::vector<std::string> keys(const nlohmann::ordered_json& j) {
  std::vector<std::string> k;
  for (const auto& [key, value] : j.items()) k.push_back(key);
  return k;
}

// The schema, pinned: a change here is a change of the contract (and, if a key changes
// meaning or goes away, of schema_version).
TEST_F(InspectTest, JsonKeysAreFixedAndHashesAndTimesAreStrings) {
  const std::string path = save("schema.mdevmig", dev_.save(), sim_identity(dev_, "dev"));
  CliRun r = inspect_json(path);
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto j = nlohmann::ordered_json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(keys(j), (std::vector<std::string>{"schema_version",
                                               "command",
                                               "file",
                                               "verdict",
                                               "problem",
                                               "format_version",
                                               "tool_version",
                                               "created",
                                               "created_unix_ns",
                                               "finished",
                                               "hostname",
                                               "channel",
                                               "chunk_size",
                                               "device",
                                               "chunks",
                                               "file_bytes",
                                               "stream_bytes",
                                               "stream_xxh3",
                                               "checksums_verified",
                                               "device_stream"}));
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["command"], "inspect");
  EXPECT_EQ(j["verdict"], "good");
  EXPECT_EQ(keys(j["chunks"][0]),
            (std::vector<std::string>{"seq", "offset", "bytes", "phase", "xxh3"}));
  EXPECT_EQ(
      keys(j["device"]),
      (std::vector<std::string>{"uuid", "sysfs_path", "device_api", "vfio_flags", "migration_flags",
                                "pci_id", "pci_subsystem", "region_sizes", "compat"}));
  // 64-bit values as strings; the hashes spelled as the text output spells them.
  const std::string stream = j["stream_xxh3"];
  EXPECT_EQ(stream.size(), 16u);
  EXPECT_EQ(stream.find_first_not_of("0123456789abcdef"), std::string::npos) << stream;
  EXPECT_TRUE(j["created_unix_ns"].is_string());
  EXPECT_TRUE(j["chunks"][0]["xxh3"].is_string());
  const std::string created = j["created"];
  ASSERT_EQ(created.size(), 30u) << created;  // 2026-12-04T06:51:20.123456789Z
  EXPECT_EQ(created[4], '-');
  EXPECT_EQ(created[10], 'T');
  EXPECT_EQ(created.back(), 'Z');
  EXPECT_EQ(std::to_string(std::stoll(created.substr(0, 4))), created.substr(0, 4));
  CliRun text = cli_stdout_of("inspect " + path);
  EXPECT_NE(text.out.find("xxh3 " + stream), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(j["chunks"][0]["xxh3"].get<std::string>()), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("created      " + created), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(j["device"]["pci_id"].get<std::string>()), std::string::npos) << text.out;
}

TEST_F(InspectTest, WithJsonAnErrorIsJsonToo) {
  CliRun r = inspect_json((dir_ / "missing.mdevmig").string());
  EXPECT_EQ(r.rc, 3);
  const auto j = nlohmann::ordered_json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(keys(j), (std::vector<std::string>{"schema_version", "command", "error"}));
  EXPECT_EQ(keys(j["error"]), (std::vector<std::string>{"exit_code", "operation", "message"}));
  EXPECT_EQ(j["error"]["exit_code"], 3);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("missing.mdevmig"), std::string::npos)
      << r.out;
}

// ---- damaged files: everything readable, then the verdict, exit 4 ---------------------------

// The chunk table of a good file (where each chunk's data lies).
std::vector<ChunkInfo> chunk_table(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  auto s = FileScanner::open(fd.get(), path);
  EXPECT_TRUE(s.ok());
  if (!s.ok()) return {};
  auto sum = verify_file(*s);
  EXPECT_TRUE(sum.ok());
  return sum.ok() ? sum->chunks : std::vector<ChunkInfo>{};
}

void flip(const std::string& path, uint64_t at) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  uint8_t b = 0;
  ASSERT_EQ(::pread(fd.get(), &b, 1, static_cast<off_t>(at)), 1);
  b ^= 0x40;
  ASSERT_EQ(::pwrite(fd.get(), &b, 1, static_cast<off_t>(at)), 1);
}

TEST_F(InspectTest, ADamagedChunkIsNamedAndEveryOtherChunkShown) {
  const std::string path = save("chunk.mdevmig", dev_.save(), sim_identity(dev_, "dev"));
  const auto table = chunk_table(path);
  ASSERT_GE(table.size(), 4u);
  flip(path, table[2].file_offset + 100);  // inside chunk 2's data
  CliRun r = inspect_json(path);
  EXPECT_EQ(r.rc, 4);
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["verdict"], "damaged");
  EXPECT_EQ(keys(nlohmann::ordered_json::parse(r.out)),
            (std::vector<std::string>{"schema_version", "command", "file", "verdict", "problem",
                                      "file_bytes", "preamble", "preamble_problem", "header",
                                      "header_problem", "chunks", "bad_chunks", "walk_problem",
                                      "trailer", "trailer_problem", "checksums_verified"}));
  EXPECT_TRUE(j["preamble_problem"].is_null()) << j.dump();
  EXPECT_TRUE(j["header_problem"].is_null()) << j.dump();
  EXPECT_EQ(j["header"]["device"]["uuid"], "dev");
  ASSERT_EQ(j["chunks"].size(), table.size()) << j.dump();
  EXPECT_EQ(j["bad_chunks"], 1);
  for (std::size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(j["chunks"][i]["ok"], i != 2) << i;
    EXPECT_EQ(j["chunks"][i]["file_offset"].get<uint64_t>() < table[i].file_offset, true) << i;
  }
  EXPECT_NE(j["chunks"][2]["problem"].get<std::string>().find("XXH3 mismatch"), std::string::npos)
      << j.dump();
  EXPECT_FALSE(j["trailer"].is_null()) << "the trailer after the bad chunk is still read";
  // Text: the table with the bad chunk marked, then the verdict last.
  CliRun t = cli_stdout_of("inspect " + path);
  EXPECT_EQ(t.rc, 4);
  EXPECT_NE(t.out.find("chunks: " + std::to_string(table.size()) + " found, 1 bad"),
            std::string::npos)
      << t.out;
  EXPECT_NE(t.out.find("BAD: chunk 2 at stream offset"), std::string::npos) << t.out;
  EXPECT_EQ(t.out.rfind("verdict: damaged: "), t.out.rfind('\n', t.out.size() - 2) + 1) << t.out;
}

TEST_F(InspectTest, ADamagedHeaderStillShowsTheChunks) {
  const std::string path = save("header.mdevmig", dev_.save(), sim_identity(dev_, "dev"));
  const auto table = chunk_table(path);
  flip(path, schema::kPreambleBytes + 9);
  CliRun r = inspect_json(path);
  EXPECT_EQ(r.rc, 4);
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_NE(j["header_problem"].get<std::string>().find("XXH3 does not match"), std::string::npos)
      << j.dump();
  EXPECT_EQ(j["chunks"].size(), table.size());
  EXPECT_EQ(j["bad_chunks"], 0);
  EXPECT_FALSE(j["trailer"].is_null());
}

TEST_F(InspectTest, ATruncatedFileShowsTheChunksBeforeTheCut) {
  const std::string path = save("cut.mdevmig", dev_.save(), sim_identity(dev_, "dev"));
  const auto table = chunk_table(path);
  ASSERT_GE(table.size(), 4u);
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(table[3].file_offset + 10)),
            0);  // inside chunk 3
  CliRun r = inspect_json(path);
  EXPECT_EQ(r.rc, 4);
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["chunks"].size(), 3u) << j.dump();
  EXPECT_EQ(j["bad_chunks"], 0);
  EXPECT_TRUE(j["trailer"].is_null());
  EXPECT_NE(j["walk_problem"].get<std::string>().find("truncated"), std::string::npos) << j.dump();
  EXPECT_NE(j["problem"].get<std::string>().find("truncated"), std::string::npos) << j.dump();
}

}  // namespace
}  // namespace mdevmig::engine
