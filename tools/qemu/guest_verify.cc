// GuestDriver::verify(): the VM against the expected state (the device model after the
// same ops): registers, guest RAM the device wrote, all of device memory through a
// device-side hash, sampled BAR2 pages and one interrupt.
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "base/check.h"
#include "tools/guest/descriptors.h"
#include "tools/guest/verify.h"
#include "tools/qemu/guest.h"

namespace mdevmig::qemu {
namespace {

constexpr uint32_t kEntries = layout::kRingEntries;
using guest::describe_diff;
using guest::hex;

// The first four slots of a ring-sized array of `T` (descriptors or completion records)
// where `got` and `want` differ, each said by `describe(slot, got, want)`.
template <typename T, typename Describe>
void slot_diffs(std::span<const uint8_t> got, std::span<const uint8_t> want,
                std::vector<std::string>& out, Describe describe) {
  for (uint32_t slot = 0, shown = 0; slot < kEntries && shown < 4; ++slot) {
    T g, w;
    std::memcpy(&g, got.data() + slot * sizeof g, sizeof g);
    std::memcpy(&w, want.data() + slot * sizeof w, sizeof w);
    if (std::memcmp(&g, &w, sizeof g) == 0) continue;
    ++shown;
    char buf[240];
    describe(buf, sizeof buf, slot, g, w);
    out.emplace_back(buf);
  }
}

void describe_cmpl(char* buf, std::size_t size, uint32_t slot, const mdevmig_dma_cmpl& g,
                   const mdevmig_dma_cmpl& w) {
  std::snprintf(buf, size,
                "completion slot %u: got status %u seq %u user_data %" PRIx64 " bytes %" PRIu64
                ", want status %u seq %u user_data %" PRIx64 " bytes %" PRIu64,
                slot, g.status, g.seq, static_cast<uint64_t>(g.user_data),
                static_cast<uint64_t>(g.bytes_done), w.status, w.seq,
                static_cast<uint64_t>(w.user_data), static_cast<uint64_t>(w.bytes_done));
}

void describe_desc(char* buf, std::size_t size, uint32_t slot, const mdevmig_dma_desc& g,
                   const mdevmig_dma_desc& w) {
  std::snprintf(buf, size,
                "guest RAM (ring) slot %u: got opcode %u len %" PRIu64 " user_data %" PRIx64
                ", want opcode %u len %" PRIu64 " user_data %" PRIx64,
                slot, g.opcode, static_cast<uint64_t>(g.len), static_cast<uint64_t>(g.user_data),
                w.opcode, static_cast<uint64_t>(w.len), static_cast<uint64_t>(w.user_data));
}

}  // namespace

Result<Verification> GuestDriver::verify(QtestClient& qt, uint32_t sample_pages) {
  Verification v;
  MDEVMIG_CHECK(pending_.empty(), "verify() with %zu ops pending", pending_.size());
  MDEVMIG_TRY(drain(qt));
  MDEVMIG_TRY(service_irqs(qt));

  // Registers, as the device model holds them after the same ops.
  const guest::Replay& model = state_.device;
  MDEVMIG_CHECK(model.reg(MDEVMIG_REG_SEQ) == static_cast<uint32_t>(state_.descs),
                "the model consumed every descriptor");
  {
    guest::QtestPort p = port(qt);
    for (auto& m : MDEVMIG_TRY(guest::compare_registers(p, model)))
      v.mismatches.push_back(std::move(m));
  }
  MDEVMIG_TRY(verify_guest_ram(qt, v));
  MDEVMIG_TRY(verify_device_memory(qt, sample_pages, v));
  MDEVMIG_TRY(verify_irq(qt, v));
  v.descs = state_.descs;
  return v;
}

Result<void> GuestDriver::verify_guest_ram(QtestClient& qt, Verification& v) {
  const guest::Replay& model = state_.device;
  // Guest RAM the DMA engine wrote: data, hashes, completion records (status, SEQ).
  struct Area {
    const char* name;
    uint64_t base;
    uint64_t len;
  } areas[] = {{"guest RAM (DMA destinations)", place_.guest.dst(0),
                uint64_t{guest::Layout::kSlots} * guest::Layout::kSlotSize},
               {"guest RAM (completion records)", place_.guest.cmpl(0),
                uint64_t{kEntries} * sizeof(mdevmig_dma_cmpl)},
               {"guest RAM (HASH results)", place_.guest.result(0), uint64_t{kEntries} * 8}};
  for (const auto& a : areas) {
    auto got = MDEVMIG_TRY(qt.b64read(a.base, a.len));
    auto want = model.guest(a.base, a.len);
    if (auto d = describe_diff(a.name, a.base, got, want); !d.empty()) v.mismatches.push_back(d);
    // Say which descriptors' completions differ, decoded.
    if (a.base == place_.guest.cmpl(0))
      slot_diffs<mdevmig_dma_cmpl>(got, want, v.mismatches, describe_cmpl);
  }
  // The ring: written by the guest (qtest), read by the device.
  const uint64_t len = uint64_t{kEntries} * sizeof(mdevmig_dma_desc);
  auto got = MDEVMIG_TRY(qt.b64read(place_.guest.ring(), len));
  slot_diffs<mdevmig_dma_desc>(got, model.guest(place_.guest.ring(), len), v.mismatches,
                               describe_desc);
  return ok();
}

Result<void> GuestDriver::verify_device_memory(QtestClient& qt, uint32_t sample_pages,
                                               Verification& v) {
  const guest::Replay& model = state_.device;
  // Device memory, all of it: the device hashes it (XXH64) into guest RAM.
  const uint64_t hash_desc = next_desc();
  mdevmig_dma_desc h =
      guest::hash(0, state_.mem_size(), place_.guest.result(ring_.slot(hash_desc)));
  h.flags = MDEVMIG_DMA_F_NO_IRQ;
  MDEVMIG_TRY(submit(qt, h));
  MDEVMIG_TRY(settle(qt));
  v.mem_hash = MDEVMIG_TRY(qt.readq(h.dst));
  uint64_t want_hash = 0;
  std::memcpy(&want_hash, model.guest(h.dst, 8).data(), 8);
  if (v.mem_hash != want_hash)
    v.mismatches.push_back("device memory XXH64 = " + hex(v.mem_hash) + ", want " + hex(want_hash));

  // And pages read through BAR2 by the "CPU", compared byte for byte: the last pages
  // the workload wrote and random others.
  const uint64_t pages = state_.mem_size() / 4096, half_pages = pages / 2;
  std::vector<uint64_t> sample;
  for (uint64_t k = 1; k <= 4 && k <= state_.bar2_writes; ++k)
    sample.push_back(half_pages + (state_.bar2_writes - k) % half_pages);
  for (uint32_t k = 0; k < sample_pages; ++k) sample.push_back(rng_() % pages);
  for (uint64_t p : sample) {
    auto got = MDEVMIG_TRY(qt.b64read(place_.bar2 + p * 4096, 4096));
    auto want = model.mem().subspan(p * 4096, 4096);
    if (auto d = describe_diff("BAR2 page " + std::to_string(p), p * 4096, got, want); !d.empty())
      v.mismatches.push_back(d);
    ++v.pages_sampled;
  }
  return ok();
}

Result<void> GuestDriver::verify_irq(QtestClient& qt, Verification& v) {
  // An interrupt: a descriptor that asks for one.
  MDEVMIG_TRY(service_irqs(qt));
  uint64_t raises = irq_ == IrqMode::kIntx ? qt.irq(intx_line_).raises : 0;
  if (irq_ == IrqMode::kMsi) MDEVMIG_TRY(qt.writel(place_.msi, 0));
  MDEVMIG_TRY(submit(qt, guest::fill(0, 0, 1)));
  if (auto w = wait_irq(qt, raises, std::chrono::seconds(10)); w) {
    v.irq_delivered = true;
  } else {
    v.mismatches.push_back("no interrupt for a completed descriptor (" + w.error().message() + ")");
  }
  MDEVMIG_TRY(settle(qt));
  return service_irqs(qt);
}

}  // namespace mdevmig::qemu
