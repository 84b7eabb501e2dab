// Writes the seed corpora of the vendor fuzzers:
//   vendor_seedgen <corpus dir>  ->  <dir>/vendor_loader_fuzz/*, <dir>/vendor_mmio_fuzz/*
// The committed seeds in tests/fuzz/corpus/ were made with it; re-run it after a
// format change (the stream seeds must stay loadable for the fuzzer to get deep).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "mmio_program.h"
#include "tools/guest/descriptors.h"
#include "tools/guest/sim_port.h"

namespace {

using namespace mdevmig::fuzz;
using mdevmig::guest::SimRing;
using mdevmig::vendor_sim::SimDevice;
namespace fs = std::filesystem;

constexpr uint64_t kLoaderMem = 16 << 10;  // vendor_loader_fuzz's geometry
constexpr uint32_t kLoaderType = 3;

void put(const fs::path& dir, const std::string& name, const std::vector<uint8_t>& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

// A device with state everywhere: INTx asserted, scratch, BARs, a guest copy in flight.
void make_busy(SimDevice& dev, bool msi) {
  dev.iommu().map(kBuf, 1 << 20);
  for (uint64_t i = 0; i < dev.mem_size(); i++) dev.mem()[i] = static_cast<uint8_t>(i * 7);
  SimRing drv(dev, 8);
  dev.cfg_write(0x10, 0xfebf0000);
  dev.cfg_write(0x18, 0xe0000000);
  dev.mmio_write32(MDEVMIG_REG_SCRATCH(1), 0x1234);
  if (msi) {
    dev.cfg_write(MDEVMIG_CFG_MSI_CAP + 4, 0xfee00000);
    dev.cfg_write(MDEVMIG_CFG_MSI_CAP + 16, 0x2);
    dev.cfg_write(MDEVMIG_CFG_MSI_CAP + 2, 0x21, 2);
  }
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW | MDEVMIG_INT_ERROR);
  drv.submit(mdevmig::guest::copy_guest(kBuf, kBuf + (512 << 10), 3 * MDEVMIG_DMA_STEP_BYTES));
  dev.run(1);
}

void loader_seeds(const fs::path& dir) {
  SimDevice idle(kLoaderMem, kLoaderType);
  put(dir, "idle_full", idle.save());
  const uint64_t none[] = {0};
  put(dir, "idle_no_pages", idle.save_pages(std::span<const uint64_t>(none, 0)));

  SimDevice busy(kLoaderMem, kLoaderType);
  make_busy(busy, false);
  const uint64_t some[] = {2};
  put(dir, "busy_intx_one_page", busy.save_pages(some));
  put(dir, "busy_intx_no_pages", busy.save_pages(std::span<const uint64_t>(some, 0)));

  SimDevice msi(kLoaderMem, kLoaderType);
  make_busy(msi, true);
  put(dir, "busy_msi_full", msi.save());

  // An unknown optional record between COMPAT and the state.
  std::vector<uint8_t> s;
  mdevmig::vendor_sim::append_compat(s, msi.model());
  uint8_t opt[sizeof(mdevmig_rec_hdr)] = {};
  mdevmig_put_le32(opt, MDEVMIG_REC_TAG(0x103));  // flags 0: optional; empty payload
  mdevmig_put_le64(opt + 16, mdevmig_xxh64(opt, 0));
  s.insert(s.end(), std::begin(opt), std::end(opt));
  mdevmig::vendor_sim::append_state(s, msi.model());
  mdevmig::vendor_sim::append_end(s);
  put(dir, "optional_record", s);
}

void mmio_seeds(const fs::path& dir) {
  auto setup = [](ProgramWriter& p) {
    p.cfg_write(0x04, 2, 0x6)
        .reg(reg_index(MDEVMIG_REG_RING_BASE_LO), static_cast<uint32_t>(SimRing::kLayout.ring()))
        .reg(reg_index(MDEVMIG_REG_RING_BASE_HI), 0)
        .reg(reg_index(MDEVMIG_REG_RING_SIZE), kRingEntries)
        .reg(reg_index(MDEVMIG_REG_CTRL), MDEVMIG_CTRL_ENABLE);
  };
  {
    ProgramWriter p;  // every opcode, INTx
    setup(p);
    p.desc(0, MDEVMIG_DMA_OP_COPY_TO_DEV, 0, 8, 0, 6)
        .desc(1, MDEVMIG_DMA_OP_COPY_FROM_DEV, 0, 0, 9, 17)
        .desc(2, MDEVMIG_DMA_OP_COPY_GUEST, 0, 8, 9, 7)
        .desc(3, MDEVMIG_DMA_OP_FILL, 1, 0, 3, 17, 0x0102030405060708ull)
        .desc(4, MDEVMIG_DMA_OP_HASH, 0, 0, 10, 5)
        .doorbell(5)
        .run(31)
        .reg(reg_index(MDEVMIG_REG_INT_STATUS), 0xf);
    put(dir, "all_opcodes", p.bytes());
  }
  {
    ProgramWriter p;  // migrations mid-descriptor, MSI with a masked vector
    setup(p);
    p.cfg_write(MDEVMIG_CFG_MSI_CAP + 4, 4, 0xfee00000)
        .cfg_write(MDEVMIG_CFG_MSI_CAP + 16, 4, 0x2)
        .cfg_write(MDEVMIG_CFG_MSI_CAP + 2, 2, 0x21)
        .desc(0, MDEVMIG_DMA_OP_COPY_GUEST, 0, 8, 9, 7)
        .desc(1, MDEVMIG_DMA_OP_FILL, 0, 0, 0, 5, 0xaa)
        .doorbell(2)
        .run(1)
        .save_load()
        .run(1)
        .save_load()
        .cfg_write(MDEVMIG_CFG_MSI_CAP + 16, 4, 0)
        .run(31);
    put(dir, "migrate_midway_msi", p.bytes());
  }
  {
    ProgramWriter p;  // errors: bad descriptors, faults, a ring that cannot be fetched
    setup(p);
    p.desc(0, 0, 0, 0, 0, 0)
        .desc(1, MDEVMIG_DMA_OP_COPY_TO_DEV, 0, 12, 0, 2)
        .desc(2, MDEVMIG_DMA_OP_COPY_FROM_DEV, 0, 5, 8, 1)
        .desc(3, MDEVMIG_DMA_OP_COPY_GUEST, 0, 11, 8, 16)
        .desc(4, MDEVMIG_DMA_OP_HASH, 0, 0, 13, 2)
        .doorbell(5)
        .iommu(0, 3)
        .run(31)
        .reg(reg_index(MDEVMIG_REG_RING_BASE_LO), 0x1000)
        .doorbell(3)
        .run(31)
        .reg(reg_index(MDEVMIG_REG_RING_SIZE), 3);
    put(dir, "errors", p.bytes());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  fs::path out(argv[1]);
  loader_seeds(out / "vendor_loader_fuzz");
  mmio_seeds(out / "vendor_mmio_fuzz");
  return 0;
}
