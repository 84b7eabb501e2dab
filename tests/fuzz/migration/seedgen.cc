// Writes the seed corpora of the migration fuzzers into DIR/migration_container_fuzz and
// DIR/migration_wire_fuzz: a small real save file of the simulator (and a variant of
// another instance type), and a whole wire conversation; and the corpus of inspect's
// damaged-file reader, DIR/cli_inspect_damaged_fuzz: a valid save file and copies of it
// damaged in each part (truncated, bytes flipped in the header, a chunk's frame table, a
// chunk's payload, the trailer).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "migration/engine/channel.h"
#include "migration/engine/savefile.h"
#include "sim.h"

namespace {

using namespace mdevmig;

// A stop-copy-only channel over the simulator: the whole stream at once.
class SeedChannel final : public engine::Channel {
 public:
  explicit SeedChannel(vendor_sim::SimDevice& d) : stream_(d.save()) {}
  schema::Channel kind() const override { return schema::Channel::kV2StopCopy; }
  Result<void> start_save(bool) override { return ok(); }
  Result<void> stop_copy() override { return ok(); }
  Result<std::span<const std::byte>> read(std::size_t max) override {
    const std::size_t n = std::min(max, stream_.size() - pos_);
    std::span<const std::byte> s(reinterpret_cast<const std::byte*>(stream_.data()) + pos_, n);
    pos_ += n;
    return s;
  }
  Result<uint64_t> pending() override { return 0; }
  Result<void> finish_save(bool) override { return ok(); }
  Result<void> start_resume() override { return ok(); }
  Result<void> write(std::span<const std::byte>) override { return ok(); }
  Result<void> finish_resume(bool) override { return ok(); }
  engine::Recovery recover() override { return {}; }
  std::string state_name() override { return "seed"; }

 private:
  std::vector<uint8_t> stream_;
  std::size_t pos_ = 0;
};

bool save_seed(const std::string& path, uint64_t mem, uint32_t type, std::size_t chunk) {
  vendor_sim::SimDevice d(mem, type);
  for (uint64_t i = 0; i < mem; i += 512) d.mem()[i] = static_cast<uint8_t>(i >> 9);
  d.mmio_write32(MDEVMIG_REG_SCRATCH(0), 42);
  SeedChannel ch(d);
  schema::DeviceIdentity id;
  id.device_api = "vfio-pci";
  id.pci_vendor = MDEVMIG_PCI_VENDOR_ID;
  id.pci_device = MDEVMIG_PCI_DEVICE_ID;
  id.compat =
      schema::Compat{MDEVMIG_STREAM_VERSION, MDEVMIG_MODEL_VERSION, type, MDEVMIG_PAGE_SIZE, mem};
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  engine::SaveOptions opt;
  opt.chunk_size = chunk;
  auto r = engine::save_to_file(ch, id, fd.get(), opt);
  if (!r.ok()) std::fprintf(stderr, "%s\n", r.error().message().c_str());
  return r.ok();
}

std::vector<char> slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write(const std::filesystem::path& p, const std::vector<char>& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A valid save file of several chunks, then damaged copies of it. Where each part lies is
// found the way a reader finds it: the preamble gives the header's length, frame_size()
// each frame's, the last frame is the trailer.
bool damaged_seeds(const std::filesystem::path& dir) {
  const std::filesystem::path valid = dir / "valid_four_pages";
  if (!save_seed(valid, 4 * MDEVMIG_PAGE_SIZE, 1, 5000)) return false;
  const std::vector<char> file = slurp(valid);
  const auto bytes = std::as_bytes(std::span(file));
  auto pre = schema::decode_preamble(bytes.first(schema::kPreambleBytes));
  if (!pre.ok()) return false;
  std::vector<std::size_t> frames;  // each frame's first byte
  for (std::size_t pos = schema::kPreambleBytes + pre->header_bytes; pos < file.size();) {
    auto n = schema::frame_size(bytes.subspan(pos), schema::kMaxFrameBytes);
    if (!n.ok() || !*n) return false;
    frames.push_back(pos);
    pos += **n;
  }
  if (frames.size() < 4) return false;  // at least three chunks and the trailer
  const std::size_t header = schema::kPreambleBytes, trailer = frames.back();
  auto flipped = [&](std::size_t at) {
    std::vector<char> v = file;
    v[at] = static_cast<char>(v[at] ^ 0x10);
    return v;
  };
  auto cut = [&](std::size_t n) {
    return std::vector<char>(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(n));
  };
  write(dir / "truncated_in_header", cut(header + pre->header_bytes / 2));
  write(dir / "truncated_in_chunk", cut(frames[1] + (frames[2] - frames[1]) / 2));
  write(dir / "truncated_before_trailer", cut(trailer));
  write(dir / "flipped_preamble", flipped(9));
  write(dir / "flipped_header", flipped(header + pre->header_bytes / 2));
  write(dir / "flipped_chunk_table", flipped(frames[1] + 4));  // the first segment's length
  write(dir / "flipped_chunk_payload", flipped((frames[1] + frames[2]) / 2));
  write(dir / "flipped_trailer", flipped(file.size() - 9));
  return true;
}

void put(std::ofstream& out, std::span<const std::byte> m) {
  out.write(reinterpret_cast<const char*>(m.data()), static_cast<std::streamsize>(m.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir / "migration_container_fuzz");
  std::filesystem::create_directories(dir / "migration_wire_fuzz");
  std::filesystem::create_directories(dir / "cli_inspect_damaged_fuzz");
  if (!save_seed(dir / "migration_container_fuzz/two_pages", 2 * MDEVMIG_PAGE_SIZE, 0, 3000) ||
      !save_seed(dir / "migration_container_fuzz/eight_pages_type3", 8 * MDEVMIG_PAGE_SIZE, 3,
                 9000)) {
    return 1;
  }
  if (!damaged_seeds(dir / "cli_inspect_damaged_fuzz")) {
    std::fprintf(stderr, "%s: writing the damaged save files failed\n", argv[0]);
    return 1;
  }
  schema::Encoder enc;
  std::ofstream out(dir / "migration_wire_fuzz/conversation", std::ios::binary | std::ios::trunc);
  schema::WireHello h;
  h.role = schema::Role::kSource;
  h.tool_version = "seed";
  h.device.device_api = "vfio-pci";
  h.device.compat = schema::Compat{1, 1, 0, 4096, 8192};
  h.channel = schema::Channel::kV1Region;
  h.guest_mem_bytes = 4 * 4096;
  h.page_size = 4096;
  h.precopy_sync = true;
  put(out, enc.wire_hello(h));
  std::vector<std::byte> data(300, std::byte{0x5a});
  put(out, enc.wire_chunk(0, 0, schema::Phase::kPreCopy, data));
  std::vector<std::byte> page(4096, std::byte{1});
  schema::WireGuestPages g;
  g.iteration = 1;
  g.runs = {{2, 1}};
  g.data = page;
  put(out, enc.wire_guest_pages(g));
  put(out, enc.wire_sync({1}));
  put(out, enc.wire_synced({1, 300 + 4096, 0.002, 0.05}));
  put(out, enc.wire_switchover({1, 300, "converged"}));
  put(out, enc.wire_chunk(1, 300, schema::Phase::kStopCopy, data));
  put(out, enc.wire_done({2, 600, 1234, 1}));
  put(out, enc.wire_error(schema::ErrorCode::kCorrupt, "seed"));
  return 0;
}
