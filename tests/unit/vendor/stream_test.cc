// The state stream: writers, round trips, exact continuation of in-flight work after a
// load, and the loader against hostile input (every truncation, every single-bit flip,
// crafted records with valid checksums but invalid content).
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "sim.h"
#include "tools/guest/descriptors.h"
#include "tools/guest/sim_port.h"

namespace mdevmig::vendor_sim {
namespace {

constexpr uint64_t kBuf = 0x40000000;
constexpr uint64_t kBufSize = 1 << 20;
constexpr uint64_t kStep = MDEVMIG_DMA_STEP_BYTES;
constexpr size_t kHdr = sizeof(mdevmig_rec_hdr);

struct Rec {
  size_t off;  // of the header
  uint32_t tag;
  uint32_t flags;
  uint64_t len;
};

std::vector<Rec> records(const std::vector<uint8_t>& s) {
  std::vector<Rec> out;
  for (size_t at = 0; at + kHdr <= s.size();) {
    Rec r{at, mdevmig_get_le32(&s[at]), mdevmig_get_le32(&s[at + 4]), mdevmig_get_le64(&s[at + 8])};
    out.push_back(r);
    at += kHdr + r.len;
  }
  return out;
}

void reseal(std::vector<uint8_t>& s, const Rec& r) {
  mdevmig_put_le64(&s[r.off + 16], XXH64(s.data() + r.off + kHdr, r.len, 0));
}

// Applies fn to the payload of the first record with this tag and fixes its checksum.
void mutate(std::vector<uint8_t>& s, uint32_t tag, const std::function<void(uint8_t*)>& fn) {
  for (const Rec& r : records(s)) {
    if (r.tag != tag) continue;
    fn(s.data() + r.off + kHdr);
    reseal(s, r);
    return;
  }
  FAIL() << "no record " << std::hex << tag;
}

std::vector<uint8_t> record(uint32_t tag, uint32_t flags, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> r(kHdr);
  mdevmig_put_le32(&r[0], tag);
  mdevmig_put_le32(&r[4], flags);
  mdevmig_put_le64(&r[8], payload.size());
  mdevmig_put_le64(&r[16], XXH64(payload.data(), payload.size(), 0));
  r.insert(r.end(), payload.begin(), payload.end());
  return r;
}

// Inserts bytes before the record with index idx.
void insert_before(std::vector<uint8_t>& s, size_t idx, const std::vector<uint8_t>& bytes) {
  auto recs = records(s);
  size_t at = idx < recs.size() ? recs[idx].off : s.size();
  s.insert(s.begin() + static_cast<ptrdiff_t>(at), bytes.begin(), bytes.end());
}

std::vector<uint8_t> cfg_bytes(SimDevice& d) {
  std::vector<uint8_t> b(MDEVMIG_CFG_SIZE);
  EXPECT_EQ(mdevmig_model_cfg_read(d.model(), 0, b.data(), MDEVMIG_CFG_SIZE), 0);
  return b;
}

std::vector<uint32_t> reg_dump(SimDevice& d) {
  std::vector<uint32_t> r;
  for (uint32_t off = 0; off < 0x200; off += 4) r.push_back(d.mmio_read32(off));
  return r;
}

void expect_reset_state(SimDevice& d) {
  SimDevice fresh(d.mem_size(), d.model()->type_id);
  EXPECT_EQ(cfg_bytes(d), cfg_bytes(fresh));
  EXPECT_EQ(reg_dump(d), reg_dump(fresh));
  EXPECT_FALSE(d.model()->eng.active);
  EXPECT_FALSE(d.intx);
}

void fill_memory(SimDevice& d, uint32_t seed) {
  for (uint64_t i = 0; i < d.mem_size(); i++)
    d.mem()[i] = static_cast<uint8_t>((i * 31 + seed) ^ (i >> 11));
}

// A device with something in every part of its state: config (BARs, MSI programmed but
// off), registers, a latched interrupt with INTx asserted, and a copy in flight.
struct Busy {
  explicit Busy(uint64_t mem = 1 << 20, uint32_t type = 3) : dev(mem, type) {
    EXPECT_TRUE(dev.iommu().map(kBuf, kBufSize));
    fill_memory(dev, 1);
    uint8_t* b = dev.iommu().translate(kBuf, kBufSize);
    for (uint64_t i = 0; i < kBufSize; i++) b[i] = static_cast<uint8_t>(i * 3);
    drv = std::make_unique<guest::SimRing>(dev, 16);
    dev.cfg_write(0x10, 0xfebf0000);
    dev.cfg_write(0x18, 0xe0000000);
    dev.cfg_write(0x3c, 11, 1);
    dev.cfg_write(MDEVMIG_CFG_MSI_CAP + 4, 0xfee00000);
    dev.cfg_write(MDEVMIG_CFG_MSI_CAP + 12, 0x4041);
    dev.cfg_write(MDEVMIG_CFG_MSI_CAP + 16, 0x5);
    for (uint32_t i = 0; i < MDEVMIG_NR_SCRATCH; i++)
      dev.mmio_write32(MDEVMIG_REG_SCRATCH(i), 0xa0 + i);
    dev.mmio_write32(MDEVMIG_REG_INT_MASK, MDEVMIG_INT_RING);
    dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW);
    drv->submit(guest::fill(0, 100, 0x42));
    dev.run_to_idle();
    // Guest to guest, so it is in flight (2 of 4 steps done) whatever the memory size.
    drv->submit(guest::copy_guest(kBuf, kBuf + kBufSize / 2, 3 * kStep + 100));
    dev.run(2);
  }
  SimDevice dev;
  std::unique_ptr<guest::SimRing> drv;
};

LoadResult load_into(SimDevice& d, const std::vector<uint8_t>& s, size_t chunk = SIZE_MAX) {
  return d.load(std::span<const uint8_t>(s.data(), s.size()), chunk);
}

// ---- writers -------------------------------------------------------------------------

TEST(StreamWriters, RecordShapes) {
  SimDevice d(64 << 10, 9);
  auto s = d.save();
  auto recs = records(s);
  ASSERT_EQ(recs.size(), 1u + 1 + 4 + 1);
  EXPECT_EQ(recs[0].tag, MDEVMIG_REC_COMPAT);
  EXPECT_EQ(recs[0].len, sizeof(mdevmig_rec_compat));
  EXPECT_EQ(recs[1].tag, MDEVMIG_REC_PAGES);
  EXPECT_EQ(recs[1].len, 16u + 16 * 4096);
  EXPECT_EQ(recs[2].tag, MDEVMIG_REC_CONFIG);
  EXPECT_EQ(recs[3].tag, MDEVMIG_REC_REGS);
  EXPECT_EQ(recs[4].tag, MDEVMIG_REC_ENGINE);
  EXPECT_EQ(recs[5].tag, MDEVMIG_REC_IRQ);
  EXPECT_EQ(recs[6].tag, MDEVMIG_REC_END);
  EXPECT_EQ(recs[6].len, 0u);
  for (const Rec& r : recs) {
    EXPECT_EQ(r.flags, MDEVMIG_REC_F_MANDATORY);
    EXPECT_EQ(mdevmig_get_le64(&s[r.off + 16]), XXH64(&s[r.off + kHdr], r.len, 0));
  }
  const uint8_t* c = &s[kHdr];
  EXPECT_EQ(mdevmig_get_le32(c + 0), uint32_t{MDEVMIG_STREAM_VERSION});
  EXPECT_EQ(mdevmig_get_le32(c + 4), uint32_t{MDEVMIG_MODEL_VERSION});
  EXPECT_EQ(mdevmig_get_le32(c + 8), 9u);
  EXPECT_EQ(mdevmig_get_le32(c + 12), MDEVMIG_PAGE_SIZE);
  EXPECT_EQ(mdevmig_get_le64(c + 16), uint64_t{64 << 10});
  size_t state = recs[6].off - recs[2].off;
  EXPECT_EQ(state, mdevmig_stream_state_size());
}

TEST(StreamWriters, BufferTooSmall) {
  SimDevice d(64 << 10);
  std::vector<uint8_t> buf(MDEVMIG_STREAM_PAGES_SIZE(4));
  EXPECT_EQ(mdevmig_stream_put_compat(d.model(), buf.data(), kHdr + 31), -ENOSPC);
  EXPECT_EQ(mdevmig_stream_put_pages(d.model(), 0, 4, buf.data(), buf.size() - 1), -ENOSPC);
  EXPECT_EQ(mdevmig_stream_put_state(d.model(), buf.data(), mdevmig_stream_state_size() - 1),
            -ENOSPC);
  EXPECT_EQ(mdevmig_stream_put_end(buf.data(), kHdr - 1), -ENOSPC);
  EXPECT_EQ(mdevmig_stream_put_pages(d.model(), 0, 4, buf.data(), buf.size()), long(buf.size()));
}

TEST(StreamWriters, PageRangeChecked) {
  SimDevice d(64 << 10);
  std::vector<uint8_t> buf(MDEVMIG_STREAM_PAGES_SIZE(MDEVMIG_REC_PAGES_MAX + 1));
  EXPECT_EQ(mdevmig_stream_put_pages(d.model(), 0, 0, buf.data(), buf.size()), -EINVAL);
  EXPECT_EQ(mdevmig_stream_put_pages(d.model(), 0, 17, buf.data(), buf.size()), -EINVAL);
  EXPECT_EQ(mdevmig_stream_put_pages(d.model(), 16, 1, buf.data(), buf.size()), -EINVAL);
  EXPECT_EQ(mdevmig_stream_put_pages(d.model(), ~0ull, 2, buf.data(), buf.size()), -EINVAL);
  SimDevice big(2 << 20);
  EXPECT_EQ(
      mdevmig_stream_put_pages(big.model(), 0, MDEVMIG_REC_PAGES_MAX + 1, buf.data(), buf.size()),
      -EINVAL);
  EXPECT_GT(mdevmig_stream_put_pages(big.model(), 0, MDEVMIG_REC_PAGES_MAX, buf.data(), buf.size()),
            0);
}

// ---- round trips ---------------------------------------------------------------------

TEST(StreamRoundTrip, SaveLoadSaveIsByteIdentical) {
  Busy src;
  auto s1 = src.dev.save();
  SimDevice dst(1 << 20, 3);
  auto r = load_into(dst, s1);
  ASSERT_EQ(r.err, 0) << mdevmig_loader_reason_str(r.reason);
  EXPECT_EQ(dst.save(), s1);
  EXPECT_EQ(cfg_bytes(dst), cfg_bytes(src.dev));
  EXPECT_EQ(reg_dump(dst), reg_dump(src.dev));
  EXPECT_EQ(0, std::memcmp(dst.mem(), src.dev.mem(), dst.mem_size()));
  mdevmig_model_irq_info info;
  mdevmig_model_get_irq_info(dst.model(), &info);
  EXPECT_TRUE(info.intx_asserted);
  EXPECT_TRUE(dst.intx);  // signalled when the state was applied
  EXPECT_EQ(dst.intx_changes, 1u);
  EXPECT_TRUE(dst.msis.empty());
  EXPECT_EQ(dst.kicks, 0u);
}

TEST(StreamRoundTrip, AnySegmentation) {
  Busy src(64 << 10);
  auto s = src.dev.save();
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{23}, size_t{24}, size_t{25}, size_t{4099}}) {
    SimDevice dst(64 << 10, 3);
    auto r = load_into(dst, s, chunk);
    ASSERT_EQ(r.err, 0) << chunk << ": " << mdevmig_loader_reason_str(r.reason);
    EXPECT_EQ(dst.save(), s) << chunk;
  }
}

TEST(StreamRoundTrip, LaterPagesWin) {
  SimDevice src(16 << 10);
  std::vector<uint8_t> s;
  append_compat(s, src.model());
  src.mem()[5] = 1;
  append_pages(s, src.model(), 0, 4);
  src.mem()[5] = 2;
  src.mem()[4096 * 3] = 3;
  append_pages(s, src.model(), 0, 1);
  append_pages(s, src.model(), 3, 1);
  append_state(s, src.model());
  append_end(s);
  SimDevice dst(16 << 10);
  ASSERT_EQ(load_into(dst, s).err, 0);
  EXPECT_EQ(dst.mem()[5], 2);
  EXPECT_EQ(dst.mem()[4096 * 3], 3);
}

TEST(StreamRoundTrip, SparsePages) {
  SimDevice src(1 << 20);
  fill_memory(src, 5);
  const uint64_t pages[] = {0, 1, 2, 7, 100, 101, 255};
  auto s = src.save_pages(pages);
  SimDevice dst(1 << 20);
  ASSERT_EQ(load_into(dst, s).err, 0);
  for (uint64_t p = 0; p < 256; p++) {
    bool sent = std::find(std::begin(pages), std::end(pages), p) != std::end(pages);
    bool same = !std::memcmp(dst.mem() + p * 4096, src.mem() + p * 4096, 4096);
    EXPECT_EQ(same, sent) << p;
  }
}

// ---- exact continuation --------------------------------------------------------------

struct Snapshot {
  std::vector<uint8_t> mem, guest, cfg;
  std::vector<uint32_t> regs;
  std::vector<unsigned> msis;
  bool intx;
};

// A workload of every opcode, several steps each, with MSI enabled (2 vectors) so
// interrupt delivery is part of what must match.
void workload(SimDevice& d, guest::SimRing& g) {
  d.cfg_write(MDEVMIG_CFG_MSI_CAP + 2, 0x11, 2);
  g.queue(guest::copy_to_dev(kBuf + 3, 10, 3 * kStep + 7));
  g.queue(guest::fill(100000, 2 * kStep + 3, 0x1122334455667788ull));
  g.queue(guest::hash(5, 4 * kStep + 9, kBuf + 16));
  g.queue(guest::copy_from_dev(17, kBuf + 300000, 2 * kStep + 1));
  g.queue(guest::copy_guest(kBuf + 1, kBuf + 700000, kStep + 5));
  g.queue(guest::fill(kStep, 50, 0));
  g.queue(guest::hash(kStep, 0, kBuf + 24));
  auto bad = guest::copy_to_dev(0x7000000000, 0, 2 * kStep);  // faults in its first step
  g.queue(bad);
  g.queue(guest::copy_to_dev(kBuf + kBufSize - kStep - 3, 0, 2 * kStep));  // faults in its second
  g.doorbell();
}

Snapshot snap(SimDevice& d) {
  uint8_t* g = d.iommu().translate(kBuf, kBufSize);
  uint8_t* c = d.iommu().translate(guest::SimRing::kLayout.cmpl(0), 16 * MDEVMIG_CMPL_SIZE);
  std::vector<uint8_t> guest(g, g + kBufSize);
  guest.insert(guest.end(), c, c + 16 * MDEVMIG_CMPL_SIZE);  // completions too
  return {std::vector<uint8_t>(d.mem(), d.mem() + d.mem_size()),
          guest,
          cfg_bytes(d),
          reg_dump(d),
          d.msis,
          d.intx};
}

void clone_guest(SimDevice& from, SimDevice& to) {
  ASSERT_TRUE(to.iommu().map(kBuf, kBufSize));
  ASSERT_TRUE(to.iommu().map(guest::SimRing::kLayout.base, guest::Layout::kSize));
  for (auto [iova, len] :
       {std::pair{kBuf, kBufSize}, {guest::SimRing::kLayout.base, guest::Layout::kSize}})
    std::memcpy(to.iommu().translate(iova, len), from.iommu().translate(iova, len), len);
}

TEST(StreamContinuation, MatchesUninterruptedRunAtEveryStep) {
  Busy ref;
  workload(ref.dev, *ref.drv);
  ref.dev.clear_events();
  uint64_t total = ref.dev.run_to_idle();
  Snapshot want = snap(ref.dev);
  ASSERT_GT(total, 15u);

  for (uint64_t k = 0; k <= total; k++) {
    SCOPED_TRACE(k);
    Busy a;
    workload(a.dev, *a.drv);
    a.dev.clear_events();
    for (uint64_t i = 0; i < k; i++) a.dev.run(1);
    std::vector<unsigned> msis_before = a.dev.msis;
    auto s = a.dev.save();

    SimDevice b(1 << 20, 3);
    clone_guest(a.dev, b);
    auto r = load_into(b, s);
    ASSERT_EQ(r.err, 0) << mdevmig_loader_reason_str(r.reason);
    b.msis = msis_before;
    b.run_to_idle();
    Snapshot got = snap(b);
    EXPECT_EQ(got.mem, want.mem);
    EXPECT_EQ(got.guest, want.guest);
    EXPECT_EQ(got.cfg, want.cfg);
    EXPECT_EQ(got.regs, want.regs);
    EXPECT_EQ(got.msis, want.msis);
    EXPECT_EQ(got.intx, want.intx);
  }
}

// ---- compatibility -------------------------------------------------------------------

TEST(StreamCompat, MismatchFailsAtTheFirstRecord) {
  SimDevice src(64 << 10, 2);
  auto s = src.save();
  const size_t compat_end = kHdr + sizeof(mdevmig_rec_compat);
  struct Case {
    const char* name;
    uint64_t mem;
    uint32_t type;
    std::function<void(uint8_t*)> edit;
    mdevmig_load_reason reason;
  };
  const Case cases[] = {
      {"memory size", 128 << 10, 2, nullptr, MDEVMIG_LOAD_MEM_SIZE},
      {"type", 64 << 10, 1, nullptr, MDEVMIG_LOAD_TYPE_MISMATCH},
      {"model version", 64 << 10, 2,
       [](uint8_t* p) { mdevmig_put_le32(p + 4, MDEVMIG_MODEL_VERSION + 1); },
       MDEVMIG_LOAD_MODEL_VERSION},
      {"stream version", 64 << 10, 2, [](uint8_t* p) { mdevmig_put_le32(p, 2); },
       MDEVMIG_LOAD_STREAM_VERSION},
      {"page size", 64 << 10, 2, [](uint8_t* p) { mdevmig_put_le32(p + 12, 8192); },
       MDEVMIG_LOAD_COMPAT_INVALID},
      {"reserved", 64 << 10, 2, [](uint8_t* p) { p[24] = 1; }, MDEVMIG_LOAD_COMPAT_INVALID},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto t = s;
    if (c.edit) mutate(t, MDEVMIG_REC_COMPAT, c.edit);
    SimDevice dst(c.mem, c.type);
    std::vector<uint8_t> recbuf(MDEVMIG_LOADER_BUF_SIZE);
    mdevmig_loader ld;
    ASSERT_EQ(mdevmig_loader_init(&ld, dst.model(), recbuf.data(), recbuf.size()), 0);
    EXPECT_EQ(mdevmig_loader_feed(&ld, t.data(), compat_end - 1), 0);
    EXPECT_EQ(mdevmig_loader_feed(&ld, t.data() + compat_end - 1, 1), -EINVAL);
    EXPECT_EQ(mdevmig_loader_reason(&ld), c.reason);
    EXPECT_EQ(mdevmig_loader_feed(&ld, t.data() + compat_end, t.size() - compat_end), -EINVAL);
    EXPECT_EQ(mdevmig_loader_finish(&ld), -EINVAL);
    EXPECT_EQ(mdevmig_loader_reason(&ld), c.reason);  // sticky: the first reason stays
  }
}

// ---- hostile streams -----------------------------------------------------------------

TEST(StreamHostile, TruncationAtEveryByte) {
  Busy src(16 << 10);
  auto s = src.dev.save();
  for (size_t len = 0; len < s.size(); len++) {
    SimDevice dst(16 << 10, 3);
    std::vector<uint8_t> prefix(s.begin(), s.begin() + static_cast<ptrdiff_t>(len));
    auto r = load_into(dst, prefix);
    ASSERT_EQ(r.err, -EINVAL) << len;
    ASSERT_EQ(r.reason, MDEVMIG_LOAD_TRUNCATED) << len;
    expect_reset_state(dst);
  }
}

TEST(StreamHostile, EverySingleBitFlipIsRejected) {
  Busy src(4096);
  auto s = src.dev.save();
  std::map<mdevmig_load_reason, int> reasons;
  for (size_t bit = 0; bit < s.size() * 8; bit++) {
    auto t = s;
    t[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    SimDevice dst(4096, 3);
    auto r = load_into(dst, t);
    ASSERT_EQ(r.err, -EINVAL) << "bit " << bit;
    ASSERT_NE(r.reason, MDEVMIG_LOAD_OK);
    reasons[r.reason]++;
    if (bit % 97 == 0) expect_reset_state(dst);
  }
  // Flips land in headers and payloads alike: several distinct reasons show up.
  EXPECT_GT(reasons[MDEVMIG_LOAD_BAD_CHECKSUM], 0);
  EXPECT_GT(reasons[MDEVMIG_LOAD_BAD_MAGIC], 0);
  EXPECT_GT(reasons[MDEVMIG_LOAD_BAD_FLAGS], 0);
  EXPECT_GT(reasons[MDEVMIG_LOAD_OVER_CAP], 0);
}

struct HostileCase {
  const char* name;
  std::function<void(std::vector<uint8_t>&)> edit;
  mdevmig_load_reason reason;
};

void set_u32(std::vector<uint8_t>& s, size_t at, uint32_t v) { mdevmig_put_le32(&s[at], v); }
void set_u64(std::vector<uint8_t>& s, size_t at, uint64_t v) { mdevmig_put_le64(&s[at], v); }
size_t rec_off(const std::vector<uint8_t>& s, uint32_t tag) {
  for (const Rec& r : records(s))
    if (r.tag == tag) return r.off;
  ADD_FAILURE() << "no record " << std::hex << tag;
  return 0;
}

const std::vector<HostileCase>& hostile_cases() {
  static const std::vector<HostileCase> cases = {
      {"bad magic", [](auto& s) { set_u32(s, 0, MDEVMIG_REC_COMPAT ^ 0x10000); },
       MDEVMIG_LOAD_BAD_MAGIC},
      {"bad magic later", [](auto& s) { set_u32(s, rec_off(s, MDEVMIG_REC_REGS), 0x12340003); },
       MDEVMIG_LOAD_BAD_MAGIC},
      {"unknown flag", [](auto& s) { set_u32(s, rec_off(s, MDEVMIG_REC_PAGES) + 4, 3); },
       MDEVMIG_LOAD_BAD_FLAGS},
      {"known type not mandatory", [](auto& s) { set_u32(s, rec_off(s, MDEVMIG_REC_END) + 4, 0); },
       MDEVMIG_LOAD_BAD_FLAGS},
      {"length ~0", [](auto& s) { set_u64(s, rec_off(s, MDEVMIG_REC_PAGES) + 8, ~0ull); },
       MDEVMIG_LOAD_OVER_CAP},
      {"length cap + 1",
       [](auto& s) {
         set_u64(s, rec_off(s, MDEVMIG_REC_PAGES) + 8, MDEVMIG_REC_MAX_PAYLOAD + 1ull);
       },
       MDEVMIG_LOAD_OVER_CAP},
      {"compat length", [](auto& s) { set_u64(s, 8, sizeof(mdevmig_rec_compat) + 8); },
       MDEVMIG_LOAD_BAD_LENGTH},
      {"end with payload", [](auto& s) { set_u64(s, rec_off(s, MDEVMIG_REC_END) + 8, 8); },
       MDEVMIG_LOAD_BAD_LENGTH},
      {"pages length not whole pages",
       [](auto& s) { set_u64(s, rec_off(s, MDEVMIG_REC_PAGES) + 8, 16 + 4096 - 1); },
       MDEVMIG_LOAD_BAD_LENGTH},
      {"pages without pages", [](auto& s) { set_u64(s, rec_off(s, MDEVMIG_REC_PAGES) + 8, 16); },
       MDEVMIG_LOAD_BAD_LENGTH},
      {"checksum", [](auto& s) { s[rec_off(s, MDEVMIG_REC_PAGES) + 16] ^= 1; },
       MDEVMIG_LOAD_BAD_CHECKSUM},
      {"payload byte", [](auto& s) { s[rec_off(s, MDEVMIG_REC_ENGINE) + kHdr + 77] ^= 0x80; },
       MDEVMIG_LOAD_BAD_CHECKSUM},
      {"state before compat",
       [](auto& s) {
         auto st = std::vector<uint8_t>(
             s.begin() + static_cast<ptrdiff_t>(rec_off(s, MDEVMIG_REC_CONFIG)),
             s.begin() + static_cast<ptrdiff_t>(rec_off(s, MDEVMIG_REC_REGS)));
         s.insert(s.begin(), st.begin(), st.end());
       },
       MDEVMIG_LOAD_NO_COMPAT},
      {"optional before compat",
       [](auto& s) {
         insert_before(s, 0, record(MDEVMIG_REC_TAG(0x99), 0, {1, 2}));
       },
       MDEVMIG_LOAD_NO_COMPAT},
      {"compat twice",
       [](auto& s) {
         std::vector<uint8_t> c(s.begin(), s.begin() + kHdr + sizeof(mdevmig_rec_compat));
         insert_before(s, 1, c);
       },
       MDEVMIG_LOAD_DUPLICATE},
      {"regs twice",
       [](auto& s) {
         size_t a = rec_off(s, MDEVMIG_REC_REGS), b = rec_off(s, MDEVMIG_REC_ENGINE);
         std::vector<uint8_t> r(s.begin() + static_cast<ptrdiff_t>(a),
                                s.begin() + static_cast<ptrdiff_t>(b));
         s.insert(s.begin() + static_cast<ptrdiff_t>(b), r.begin(), r.end());
       },
       MDEVMIG_LOAD_DUPLICATE},
      {"unknown mandatory",
       [](auto& s) { insert_before(s, 2, record(MDEVMIG_REC_TAG(0x42), 1, {7})); },
       MDEVMIG_LOAD_UNKNOWN_MANDATORY},
      {"unknown mandatory, empty",
       [](auto& s) { insert_before(s, 1, record(MDEVMIG_REC_TAG(0), 1, {})); },
       MDEVMIG_LOAD_UNKNOWN_MANDATORY},
      {"state missing",
       [](auto& s) {
         size_t a = rec_off(s, MDEVMIG_REC_ENGINE), b = rec_off(s, MDEVMIG_REC_IRQ);
         s.erase(s.begin() + static_cast<ptrdiff_t>(a), s.begin() + static_cast<ptrdiff_t>(b));
       },
       MDEVMIG_LOAD_STATE_MISSING},
      {"only compat and end",
       [](auto& s) {
         s.erase(s.begin() + static_cast<ptrdiff_t>(kHdr + sizeof(mdevmig_rec_compat)),
                 s.begin() + static_cast<ptrdiff_t>(rec_off(s, MDEVMIG_REC_END)));
       },
       MDEVMIG_LOAD_STATE_MISSING},
      {"trailing byte", [](auto& s) { s.push_back(0); }, MDEVMIG_LOAD_TRAILING},
      {"trailing record",
       [](auto& s) { insert_before(s, 99, record(MDEVMIG_REC_TAG(0x99), 0, {})); },
       MDEVMIG_LOAD_TRAILING},
      {"page past end",
       [](auto& s) { mutate(s, MDEVMIG_REC_PAGES, [](uint8_t* p) { mdevmig_put_le64(p, 16); }); },
       MDEVMIG_LOAD_PAGE_RANGE},
      {"page index overflow",
       [](auto& s) {
         mutate(s, MDEVMIG_REC_PAGES, [](uint8_t* p) { mdevmig_put_le64(p, ~0ull); });
       },
       MDEVMIG_LOAD_PAGE_RANGE},
      {"page count 0",
       [](auto& s) {
         mutate(s, MDEVMIG_REC_PAGES, [](uint8_t* p) { mdevmig_put_le32(p + 8, 0); });
       },
       MDEVMIG_LOAD_PAGE_RANGE},
      {"page count vs length",
       [](auto& s) {
         mutate(s, MDEVMIG_REC_PAGES, [](uint8_t* p) { mdevmig_put_le32(p + 8, 15); });
       },
       MDEVMIG_LOAD_PAGE_RANGE},
      {"page rsvd", [](auto& s) { mutate(s, MDEVMIG_REC_PAGES, [](uint8_t* p) { p[12] = 1; }); },
       MDEVMIG_LOAD_PAGE_RANGE},
  };
  return cases;
}

TEST(StreamHostile, CraftedStreamsRejectedWithTheirReason) {
  Busy src(64 << 10);
  const auto s = src.dev.save();
  for (const auto& c : hostile_cases()) {
    SCOPED_TRACE(c.name);
    auto t = s;
    c.edit(t);
    for (size_t chunk : {SIZE_MAX, size_t{1}}) {
      SimDevice dst(64 << 10, 3);
      auto r = load_into(dst, t, chunk);
      EXPECT_EQ(r.err, -EINVAL);
      EXPECT_EQ(r.reason, c.reason) << mdevmig_loader_reason_str(r.reason);
      expect_reset_state(dst);
    }
  }
}

TEST(StreamHostile, UnknownOptionalRecordsAreSkipped) {
  Busy src(64 << 10);
  auto s = src.dev.save();
  insert_before(s, 1, record(MDEVMIG_REC_TAG(0x77), 0, std::vector<uint8_t>(5000, 0xee)));
  insert_before(s, 4, record(MDEVMIG_REC_TAG(0xffff), 0, {}));
  SimDevice dst(64 << 10, 3);
  auto r = load_into(dst, s, 7);
  ASSERT_EQ(r.err, 0) << mdevmig_loader_reason_str(r.reason);
  EXPECT_EQ(dst.save(), src.dev.save());
}

TEST(StreamHostile, RecordLargerThanTheLoaderBuffer) {
  SimDevice src(64 << 10);
  auto s = src.save();  // one record of 16 pages
  SimDevice dst(64 << 10);
  std::vector<uint8_t> small(16 + 4096);
  mdevmig_loader ld;
  ASSERT_EQ(mdevmig_loader_init(&ld, dst.model(), small.data(), small.size()), 0);
  EXPECT_EQ(mdevmig_loader_feed(&ld, s.data(), s.size()), -EINVAL);
  EXPECT_EQ(mdevmig_loader_reason(&ld), MDEVMIG_LOAD_OVER_CAP);
  EXPECT_EQ(mdevmig_loader_init(&ld, dst.model(), small.data(), small.size() - 1), -EINVAL);
}

// Records that pass every framing check but describe a state the device cannot be in.
TEST(StreamHostile, InvalidStateRecords) {
  struct Case {
    const char* name;
    uint32_t tag;
    std::function<void(uint8_t*)> edit;
  };
  const Case cases[] = {
      {"config command IO bit", MDEVMIG_REC_CONFIG, [](uint8_t* p) { p[0] |= 1; }},
      {"config bar0 low bits", MDEVMIG_REC_CONFIG,
       [](uint8_t* p) { mdevmig_put_le32(p + 4, 0x800); }},
      {"config bar2 below size", MDEVMIG_REC_CONFIG,
       [](uint8_t* p) { mdevmig_put_le64(p + 8, 0x1000); }},
      {"config msi mme > mmc", MDEVMIG_REC_CONFIG,
       [](uint8_t* p) { mdevmig_put_le16(p + 16, 0x30); }},
      {"config msi ctrl ro bit", MDEVMIG_REC_CONFIG,
       [](uint8_t* p) { mdevmig_put_le16(p + 16, 0x80); }},
      {"config msi addr low bits", MDEVMIG_REC_CONFIG, [](uint8_t* p) { p[24] |= 1; }},
      {"config msi mask bit 4", MDEVMIG_REC_CONFIG,
       [](uint8_t* p) { mdevmig_put_le32(p + 20, 0x10); }},
      {"config rsvd", MDEVMIG_REC_CONFIG, [](uint8_t* p) { p[39] = 1; }},
      {"regs ctrl reset bit", MDEVMIG_REC_REGS, [](uint8_t* p) { mdevmig_put_le32(p, 3); }},
      {"regs int_status bit 4", MDEVMIG_REC_REGS, [](uint8_t* p) { p[4] |= 0x10; }},
      {"regs int_mask bit 31", MDEVMIG_REC_REGS, [](uint8_t* p) { p[11] |= 0x80; }},
      {"regs rsvd0", MDEVMIG_REC_REGS, [](uint8_t* p) { p[12] = 1; }},
      {"regs ring base unaligned", MDEVMIG_REC_REGS, [](uint8_t* p) { p[80] |= 8; }},
      {"regs ring size not pow2", MDEVMIG_REC_REGS,
       [](uint8_t* p) { mdevmig_put_le32(p + 88, 24); }},
      {"regs ring size over max", MDEVMIG_REC_REGS,
       [](uint8_t* p) { mdevmig_put_le32(p + 88, 8192); }},
      {"regs head >= size", MDEVMIG_REC_REGS, [](uint8_t* p) { mdevmig_put_le32(p + 92, 16); }},
      {"regs tail >= size", MDEVMIG_REC_REGS, [](uint8_t* p) { mdevmig_put_le32(p + 96, 1000); }},
      {"regs no ring while active", MDEVMIG_REC_REGS,
       [](uint8_t* p) { std::memset(p + 88, 0, 12); }},
      {"regs rsvd1", MDEVMIG_REC_REGS, [](uint8_t* p) { p[116] = 1; }},
      {"engine flag bit 1", MDEVMIG_REC_ENGINE, [](uint8_t* p) { p[0] |= 2; }},
      {"engine rsvd", MDEVMIG_REC_ENGINE, [](uint8_t* p) { p[4] = 1; }},
      {"engine rsvd2", MDEVMIG_REC_ENGINE, [](uint8_t* p) { p[159] = 1; }},
      {"engine bad opcode", MDEVMIG_REC_ENGINE, [](uint8_t* p) { mdevmig_put_le32(p + 8, 9); }},
      {"engine desc len over max", MDEVMIG_REC_ENGINE,
       [](uint8_t* p) { mdevmig_put_le64(p + 8 + 24, uint64_t{MDEVMIG_DMA_MAX_LEN} + 1); }},
      {"engine desc guest range wraps", MDEVMIG_REC_ENGINE,
       [](uint8_t* p) { mdevmig_put_le64(p + 8 + 16, ~0ull); }},
      {"engine progress == len", MDEVMIG_REC_ENGINE,
       [](uint8_t* p) { mdevmig_put_le64(p + 72, mdevmig_get_le64(p + 8 + 24)); }},
      {"engine progress > len", MDEVMIG_REC_ENGINE,
       [](uint8_t* p) { mdevmig_put_le64(p + 72, ~0ull); }},
      {"engine hash state on a copy", MDEVMIG_REC_ENGINE, [](uint8_t* p) { p[88] = 1; }},
      {"engine xxh memsize 32", MDEVMIG_REC_ENGINE,
       [](uint8_t* p) { mdevmig_put_le32(p + 152, 32); }},
      {"engine idle with a descriptor", MDEVMIG_REC_ENGINE, [](uint8_t* p) { p[0] = 0; }},
      {"irq intx 2", MDEVMIG_REC_IRQ, [](uint8_t* p) { mdevmig_put_le32(p, 2); }},
      {"irq intx disagrees", MDEVMIG_REC_IRQ, [](uint8_t* p) { mdevmig_put_le32(p, 0); }},
      {"irq pending on unmasked vector", MDEVMIG_REC_IRQ,
       [](uint8_t* p) { mdevmig_put_le32(p + 4, 2); }},
  };
  Busy src(64 << 10);
  const auto s = src.dev.save();
  {
    SimDevice ok(64 << 10, 3);
    ASSERT_EQ(load_into(ok, s).err, 0);  // the unedited stream is fine
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto t = s;
    mutate(t, c.tag, c.edit);
    SimDevice dst(64 << 10, 3);
    auto r = load_into(dst, t);
    EXPECT_EQ(r.err, -EINVAL);
    EXPECT_EQ(r.reason, MDEVMIG_LOAD_STATE_INVALID) << mdevmig_loader_reason_str(r.reason);
    expect_reset_state(dst);
  }
}

// Found by vendor_mmio_fuzz: the guest moves TAIL back onto HEAD while the descriptor
// at HEAD is in flight. A state the device can be in must load.
TEST(StreamRoundTrip, TailMovedOntoHeadWhileInFlight) {
  Busy src(1 << 20);
  ASSERT_TRUE(src.dev.model()->eng.active);
  src.dev.mmio_write32(MDEVMIG_REG_RING_TAIL, src.dev.mmio_read32(MDEVMIG_REG_RING_HEAD));
  auto s = src.dev.save();
  SimDevice dst(1 << 20, 3);
  clone_guest(src.dev, dst);
  ASSERT_EQ(load_into(dst, s).err, 0);
  EXPECT_EQ(dst.save(), s);
  src.dev.run_to_idle(64);
  dst.run_to_idle(64);
  EXPECT_EQ(dst.save(), src.dev.save());
}

TEST(StreamHostile, IdleEngineMustNotCarryHashState) {
  SimDevice src(1 << 20);
  fill_memory(src, 9);
  ASSERT_TRUE(src.iommu().map(kBuf, 4096));
  guest::SimRing g(src, 16);
  g.submit(guest::hash(3, 5 * kStep + 1, kBuf));
  src.run(2);
  auto s = src.save();
  // Corrupting a lane (with a valid checksum) is not detectable as invalid state, but
  // the idle-engine rule is: an inactive engine must not carry a hash accumulator.
  mutate(s, MDEVMIG_REC_ENGINE, [](uint8_t* p) {
    p[0] = 0;
    std::memset(p + 8, 0, 72);
  });
  SimDevice dst(1 << 20);
  auto r = load_into(dst, s);
  EXPECT_EQ(r.reason, MDEVMIG_LOAD_STATE_INVALID);
}

TEST(StreamLoader, FailedLoadLeavesTheModelReset) {
  Busy src(64 << 10);
  auto s = src.dev.save();
  mutate(s, MDEVMIG_REC_IRQ, [](uint8_t* p) { mdevmig_put_le32(p, 0); });
  Busy dst(64 << 10);  // busy before the load, too
  auto r = load_into(dst.dev, s);
  EXPECT_EQ(r.reason, MDEVMIG_LOAD_STATE_INVALID);
  expect_reset_state(dst.dev);
  EXPECT_EQ(0, std::memcmp(dst.dev.mem(), src.dev.mem(), 64 << 10));  // pages did land
}

TEST(StreamLoader, ApiContract) {
  SimDevice dst(64 << 10);
  std::vector<uint8_t> buf(MDEVMIG_LOADER_BUF_SIZE);
  mdevmig_loader ld;
  EXPECT_EQ(mdevmig_loader_init(&ld, dst.model(), nullptr, buf.size()), -EINVAL);
  ASSERT_EQ(mdevmig_loader_init(&ld, dst.model(), buf.data(), buf.size()), 0);
  EXPECT_EQ(mdevmig_loader_feed(&ld, nullptr, 0), 0);
  EXPECT_EQ(mdevmig_loader_finish(&ld), -EINVAL);
  EXPECT_EQ(mdevmig_loader_reason(&ld), MDEVMIG_LOAD_TRUNCATED);
  EXPECT_EQ(mdevmig_loader_feed(&ld, buf.data(), 1), -EINVAL);  // sticky

  std::set<std::string> strs;
  for (int i = 0; i < MDEVMIG_LOAD_NR_REASONS; i++) {
    std::string str = mdevmig_loader_reason_str(static_cast<mdevmig_load_reason>(i));
    EXPECT_FALSE(str.empty());
    EXPECT_EQ(str.find('\n'), std::string::npos);
    EXPECT_TRUE(strs.insert(str).second) << str;
  }
  EXPECT_STREQ(mdevmig_loader_reason_str(MDEVMIG_LOAD_NR_REASONS), "unknown reason");
}

}  // namespace
}  // namespace mdevmig::vendor_sim

namespace mdevmig::vendor_sim {
namespace {

// The loader fuzzer's seeds are only useful while they load: a format change must
// come with regenerated seeds (tests/fuzz/vendor/seedgen.cc).
TEST(SeedCorpus, LoaderSeedsAreValidStreams) {
  const std::filesystem::path dir =
      std::filesystem::path(MDEVMIG_FUZZ_CORPUS) / "vendor_loader_fuzz";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream f(entry.path(), std::ios::binary);
    std::vector<uint8_t> s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    SimDevice dev(16 << 10, 3);  // vendor_loader_fuzz's geometry
    auto r = load_into(dev, s);
    EXPECT_EQ(r.err, 0) << entry.path() << ": " << mdevmig_loader_reason_str(r.reason);
    n++;
  }
  EXPECT_GE(n, 3);
}

}  // namespace
}  // namespace mdevmig::vendor_sim
