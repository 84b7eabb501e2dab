// VmProcess: verification against the expected state, and checkpoints.
#include <linux/mdevmig.h>
#include <linux/vfio.h>

#include <algorithm>
#include <cstring>

#include <xxhash.h>

#include "tools/cli/stress_local_control.h"
#include "tools/cli/stress_local_vm.h"
#include "tools/guest/verify.h"
#include "tools/stress/leaks.h"

namespace mdevmig::cli::local {

using json = nlohmann::json;
using namespace std::chrono_literals;

// Drains the workload and compares everything with the expected state; the workload
// runs after.
json VmProcess::verify() {
  auto e = expected();
  if (!e.ok()) return error_json(e.error());
  workload_->pause();
  json out = compare(**e);
  workload_->run(**e);
  return out;
}

json VmProcess::compare(Expected& e) {
  std::vector<std::string> bad;
  if (auto d = workload_->drain(30s); !d.ok()) bad.push_back(d.error().message());
  uint64_t mem_hash = 0;
  compare_device_memory(e, bad, mem_hash);
  compare_guest_memory(e, bad);
  auto regs = guest::compare_registers(*port_, e.replay);
  if (!regs.ok())
    bad.push_back(regs.error().message());
  else
    bad.insert(bad.end(), regs->begin(), regs->end());
  const WorkloadCounts& c = e.counts;
  if (c.dma_failures)
    bad.push_back(std::to_string(c.dma_failures) + " DMA descriptors or doorbells failed");
  if (bad.size() > 8) bad.resize(8);
  return {{"ok", true},
          {"mismatches", bad},
          {"mem_hash", mem_hash},
          {"pages", e.replay.mem_size() / kPage},
          {"seq", e.replay.reg(MDEVMIG_REG_SEQ)},
          {"ops", c.ops()},
          {"bar2_writes", c.bar2_writes},
          {"descs", c.descs},
          {"scratch", c.scratch_writes},
          {"fds", stress::count_open_fds()}};
}

// All of device memory, through the device fd (any access mode), page by page.
void VmProcess::compare_device_memory(const Expected& e, std::vector<std::string>& bad,
                                      uint64_t& hash) {
  const std::span<const uint8_t> want = e.replay.mem();
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  std::vector<std::byte> buf(1u << 20);
  uint64_t bad_pages = 0, first_bad = UINT64_MAX;
  for (uint64_t off = 0; off < want.size(); off += buf.size()) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<uint64_t>(buf.size(), want.size() - off));
    if (auto r = dev().read(VFIO_PCI_BAR2_REGION_INDEX, off, std::span(buf.data(), n)); !r.ok()) {
      bad.push_back(r.error().message());
      break;
    }
    XXH3_64bits_update(st, buf.data(), n);
    for (std::size_t p = 0; p < n; p += kPage) {
      if (std::memcmp(buf.data() + p, want.data() + off + p, std::min<std::size_t>(kPage, n - p)) !=
          0) {
        ++bad_pages;
        first_bad = std::min(first_bad, off + p);
      }
    }
  }
  hash = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  if (bad_pages)
    bad.push_back(std::to_string(bad_pages) +
                  " device memory pages differ from the expected state, first at " +
                  std::to_string(first_bad));
}

// Guest memory the device read or wrote: the ring, the completion records (status,
// SEQ, user data) and the DMA results.
void VmProcess::compare_guest_memory(const Expected& e, std::vector<std::string>& bad) {
  struct Area {
    const char* name;
    uint64_t addr, len;
  } areas[] = {
      {"guest memory (ring)", kLayout.ring(), uint64_t{kRingEntries} * sizeof(mdevmig_dma_desc)},
      {"guest memory (completion records)", kLayout.cmpl(0),
       uint64_t{kRingEntries} * sizeof(mdevmig_dma_cmpl)},
      {"guest memory (DMA results)", kLayout.data(), kDataBytes},
  };
  std::vector<uint8_t> got;
  for (const Area& a : areas) {
    got.resize(a.len);
    if (auto r = port_->mem_read(a.addr, got); !r.ok()) {
      bad.push_back(r.error().message());
      continue;
    }
    if (auto d = guest::describe_diff(a.name, a.addr, got, e.replay.guest(a.addr, a.len));
        !d.empty())
      bad.push_back(d);
  }
}

// The checkpoint: with the workload drained, the device state to the file (by
// `mdevmig save`, which leaves the device running), the expected state and guest
// memory to the checkpoint slot.
json VmProcess::checkpoint() {
  auto e = expected();
  if (!e.ok()) return error_json(e.error());
  workload_->pause();
  auto r = [&]() -> Result<void> {
    MDEVMIG_TRY(workload_->drain(30s));
    MDEVMIG_TRY(
        run_self({"save", "fd:" + std::to_string(dev().fd()), spec_.checkpoint_file}, dev().fd()));
    return spec_.shared->save_checkpoint(**e, guest_bytes());
  }();
  workload_->run(**e);
  return r.ok() ? json{{"ok", true}} : error_json(r.error());
}

}  // namespace mdevmig::cli::local
