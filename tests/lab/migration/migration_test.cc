// Lab group "migration": the device's state through the v2 data_fd and the v1
// region: the v2 state machine against a reference table, a busy engine migrated and
// continued exactly, v1 pre-copy converging under a writer, hostile resumes, and
// sessions torn down halfway.
#include <sys/mman.h>
#include <unistd.h>

#include <linux/mdevmig.h>
#include <linux/vfio.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/dma.h"
#include "common/instance.h"
#include "common/open_instance.h"
#include "common/sysfs.h"
#include "migration/vfio/eventfd.h"
#include "migration/vfio/mapping.h"
#include "migration/vfio/mdev.h"
#include "migration/vfio/mig_state.h"

namespace mdevmig::lab {
namespace {

using namespace std::chrono_literals;
using vfio::MigState;

constexpr uint32_t kV1 = VFIO_PCI_NUM_REGIONS;  // index of the v1 migration region

using Side = OpenInstance;

Side open_side(const std::string& type) { return open_instance(type); }

// Reads a data_fd until EOF (or ENOMSG, pre-copy's temporary end).
std::vector<uint8_t> read_all(int fd) {
  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(200000);  // not a multiple of any record size
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n > 0) {
      out.insert(out.end(), buf.begin(), buf.begin() + n);
      continue;
    }
    if (n < 0 && errno != ENOMSG) ADD_FAILURE() << "read data_fd: " << std::strerror(errno);
    return out;
  }
}

// v2 save from RUNNING: STOP, STOP_COPY, read to EOF, STOP.
std::vector<uint8_t> save_v2(const vfio::Device& dev) {
  EXPECT_TRUE(dev.set_mig_state(MigState::kStop).ok());
  auto fd = dev.set_mig_state(MigState::kStopCopy);
  if (!fd.ok() || !fd.value().valid()) {
    ADD_FAILURE() << "STOP_COPY gave no data_fd";
    return {};
  }
  auto data = read_all(fd.value().get());
  EXPECT_TRUE(dev.set_mig_state(MigState::kStop).ok());
  return data;
}

// v2 resume: RESUMING, write in `chunk`-byte pieces, STOP. 0 or the errno that failed.
int resume_v2(const vfio::Device& dev, const std::vector<uint8_t>& data, size_t chunk) {
  EXPECT_TRUE(dev.set_mig_state(MigState::kStop).ok());
  auto fd = dev.set_mig_state(MigState::kResuming);
  if (!fd.ok() || !fd.value().valid()) {
    ADD_FAILURE() << "RESUMING gave no data_fd";
    return EIO;
  }
  int err = 0;
  for (size_t off = 0; off < data.size() && !err; off += chunk) {
    size_t n = std::min(chunk, data.size() - off);
    if (::write(fd.value().get(), data.data() + off, n) != static_cast<ssize_t>(n)) err = errno;
  }
  auto stop = dev.set_mig_state(MigState::kStop);
  if (!stop.ok() && !err) err = stop.error().errnum;
  return err;
}

class MigrationTest : public testing::Test {
 protected:
  void SetUp() override { MDEVMIG_REQUIRE_LAB(); }
};

// ---- the v2 state machine ---------------------------------------------------------------

enum class Outcome { kOk, kOkWithFd, kRejected, kToError };
static_assert(vfio::kMigStateCount == 8, "a new v2 state: extend the reference table");

Outcome expected(MigState cur, MigState target, bool precopy) {
  auto is_pre = [](MigState s) { return s == MigState::kPreCopy || s == MigState::kPreCopyP2P; };
  if (target == MigState::kError || (is_pre(target) && !precopy)) return Outcome::kRejected;
  if (cur == target) return Outcome::kOk;
  if (cur == MigState::kResuming) return Outcome::kToError;  // leaving commits an empty stream
  if (cur == MigState::kStopCopy && is_pre(target)) return Outcome::kRejected;
  if (is_pre(cur) && (is_pre(target) || target == MigState::kStopCopy)) return Outcome::kOk;
  if (target == MigState::kStopCopy || target == MigState::kResuming || is_pre(target))
    return Outcome::kOkWithFd;
  return Outcome::kOk;
}

TEST_F(MigrationTest, V2StateMachineMatchesTheReferenceTable) {
  Side a = open_side("eighth");
  ASSERT_TRUE(a.m);
  auto flags = a.dev().migration_flags();
  ASSERT_TRUE(flags.ok()) << flags.error().message();
  EXPECT_TRUE(flags.value() & VFIO_MIGRATION_STOP_COPY);
  EXPECT_TRUE(flags.value() & VFIO_MIGRATION_P2P);
  const bool precopy = flags.value() & (1u << 2);  // VFIO_MIGRATION_PRE_COPY (6.2+)
  std::vector<MigState> reachable = {MigState::kRunning, MigState::kStop, MigState::kStopCopy,
                                     MigState::kResuming, MigState::kRunningP2P};
  if (precopy) {
    reachable.push_back(MigState::kPreCopy);
    reachable.push_back(MigState::kPreCopyP2P);
  }
  int checked = 0;
  for (MigState cur : reachable) {
    for (uint32_t t = 0; t < vfio::kMigStateCount; ++t) {
      const MigState target = static_cast<MigState>(t);
      SCOPED_TRACE(vfio::mig_state_name(cur) + " -> " + vfio::mig_state_name(target));
      ASSERT_TRUE(a.dev().reset().ok());
      ASSERT_EQ(a.dev().mig_state().value(), MigState::kRunning);
      auto enter = a.dev().set_mig_state(cur);  // keeps a session's fd open while testing
      ASSERT_TRUE(enter.ok()) << enter.error().message();
      auto r = a.dev().set_mig_state(target);
      auto now = a.dev().mig_state();
      ASSERT_TRUE(now.ok());
      switch (expected(cur, target, precopy)) {
        case Outcome::kOk:
          EXPECT_TRUE(r.ok() && !r.value().valid());
          EXPECT_EQ(now.value(), target);
          break;
        case Outcome::kOkWithFd:
          EXPECT_TRUE(r.ok() && r.value().valid());
          EXPECT_EQ(now.value(), target);
          break;
        case Outcome::kRejected:
          EXPECT_FALSE(r.ok());
          EXPECT_EQ(now.value(), cur) << "a rejected request changed the state";
          break;
        case Outcome::kToError:
          EXPECT_FALSE(r.ok());
          EXPECT_EQ(now.value(), MigState::kError);
          break;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, static_cast<int>(reachable.size() * vfio::kMigStateCount));
  // ERROR is left by a reset, and the device works afterwards.
  ASSERT_TRUE(a.dev().reset().ok());
  EXPECT_EQ(a.dev().mig_state().value(), MigState::kRunning);
  ASSERT_TRUE(a.dev().write_as(kBar0, MDEVMIG_REG_SCRATCH(0), uint32_t{9}).ok());
  EXPECT_EQ(a.dev().read_as<uint32_t>(kBar0, MDEVMIG_REG_SCRATCH(0)).value(), 9u);
}

// ---- v2 pre-copy (kernels from 6.2) ------------------------------------------------------

TEST_F(MigrationTest, V2PreCopyWhereTheKernelHasItElseRefused) {
  Side a = open_side("quarter"), b = open_side("quarter");
  ASSERT_TRUE(a.m && b.m);
  auto flags = a.dev().migration_flags();
  ASSERT_TRUE(flags.ok());
  if (!(flags.value() & (1u << 2))) {  // no VFIO_MIGRATION_PRE_COPY: 6.1
    EXPECT_FALSE(a.dev().set_mig_state(MigState::kPreCopy).ok());
    EXPECT_EQ(a.dev().mig_state().value(), MigState::kRunning);
    return;
  }
  auto bar2 = a.dev().mmap_region(kBar2, 0);
  ASSERT_TRUE(bar2.ok());
  auto* mem = static_cast<uint8_t*>(bar2.value().data());
  std::memset(mem, 0x33, 16u << 20);

  auto fd = a.dev().set_mig_state(MigState::kPreCopy);
  ASSERT_TRUE(fd.ok() && fd.value().valid()) << (fd.ok() ? "no fd" : fd.error().message());
  const int data_fd = fd.value().get();
  auto info = a.dev().precopy_info(data_fd);
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_GT(info.value().initial_bytes, 16u << 20);
  EXPECT_EQ(info.value().dirty_bytes, 0u);
  auto size = a.dev().mig_data_size();
  ASSERT_TRUE(size.ok()) << size.error().message();
  EXPECT_GT(size.value(), 16u << 20) << "nothing sent yet: STOP_COPY would carry everything";

  // The initial data, up to the temporary end of stream (ENOMSG).
  std::vector<uint8_t> stream = read_all(data_fd);
  EXPECT_GE(stream.size(), 16u << 20);
  errno = 0;
  char byte;
  EXPECT_EQ(::read(data_fd, &byte, 1), -1);
  EXPECT_EQ(errno, ENOMSG);
  info = a.dev().precopy_info(data_fd);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info.value().initial_bytes, 0u);
  EXPECT_EQ(info.value().dirty_bytes, 0u);

  // The guest writes 5 pages: they become dirty bytes, then more data.
  for (int p : {1, 2, 3, 100, 4000}) mem[p * 4096] = 0x44;
  info = a.dev().precopy_info(data_fd);
  ASSERT_TRUE(info.ok());
  EXPECT_GE(info.value().dirty_bytes, 5u * 4096);
  EXPECT_LT(info.value().dirty_bytes, 64u * 4096);
  const size_t before = stream.size();
  std::vector<uint8_t> more = read_all(data_fd);
  EXPECT_GE(more.size(), 5u * 4096);
  EXPECT_LT(more.size(), 64u * 4096) << "re-sent more than the dirty pages";
  stream.insert(stream.end(), more.begin(), more.end());
  EXPECT_GT(stream.size(), before);

  // Switchover: PRE_COPY -> STOP_COPY on the same data_fd, then resume on B.
  mem[7 * 4096] = 0x55;
  auto stop = a.dev().set_mig_state(MigState::kStopCopy);
  ASSERT_TRUE(stop.ok()) << stop.error().message();
  EXPECT_FALSE(stop.value().valid()) << "STOP_COPY after PRE_COPY reuses the data_fd";
  more = read_all(data_fd);
  EXPECT_LT(more.size(), 64u * 4096);
  stream.insert(stream.end(), more.begin(), more.end());
  EXPECT_EQ(::read(data_fd, &byte, 1), 0) << "STOP_COPY ends with EOF";
  ASSERT_TRUE(a.dev().set_mig_state(MigState::kStop).ok());
  const uint64_t source = XXH3_64bits(mem, 16u << 20);
  ASSERT_EQ(resume_v2(b.dev(), stream, 1 << 20), 0);
  EXPECT_EQ(mem_hash(b.dev(), 16u << 20), source);

  // A cancelled pre-copy loses nothing: PRE_COPY -> RUNNING leaves memory as it was.
  ASSERT_TRUE(a.dev().set_mig_state(MigState::kRunning).ok());
  auto again = a.dev().set_mig_state(MigState::kPreCopy);
  ASSERT_TRUE(again.ok());
  mem[9 * 4096] = 0x66;
  ASSERT_TRUE(a.dev().set_mig_state(MigState::kRunning).ok());
  EXPECT_EQ(read_file(a.inst->sysfs_dir() + "/mdevmig/mode"), "passthrough");
  EXPECT_EQ(mem[9 * 4096], 0x66);
  EXPECT_EQ(mem[7 * 4096], 0x55);
}

// ---- a busy engine, migrated and continued -------------------------------------------------

constexpr uint32_t kJobs = 60;
// Long enough that the queue is still running when the test stops it on a loaded host.
constexpr uint64_t kJobLen = 1u << 20;

// A queue whose outcome depends on every descriptor, in order: copies into device
// memory, fills over them, hashes of ranges written back, copies out.
void queue_jobs(DmaRig& rig) {
  for (uint32_t i = 0; i < kJobs; ++i) {
    const uint64_t dev_off = (i % 8) * kJobLen;
    const uint64_t out = kIova + kDataOff + (2u << 20) + (i % 16) * 4096;
    switch (i % 4) {
      case 0:
        rig.queue(desc(MDEVMIG_DMA_OP_COPY_TO_DEV, kIova + kDataOff + (i % 2) * kJobLen, dev_off,
                       kJobLen, 0, i));
        break;
      case 1:
        rig.queue(desc(MDEVMIG_DMA_OP_FILL, 0, dev_off + 4096 * i, kJobLen / 2,
                       0x0101010101010101ull * i, i));
        break;
      case 2:
        rig.queue(desc(MDEVMIG_DMA_OP_HASH, 0, out, 16 * kJobLen, 0, i));
        break;
      case 3:
        rig.queue(desc(MDEVMIG_DMA_OP_COPY_FROM_DEV, dev_off, out + 64, 1000, 0, i));
        break;
    }
  }
}

TEST_F(MigrationTest, BusyEngineIsSavedMidQueueAndContinuesExactlyOnTheDestination) {
  // Two guest memories with the same initial content: one for the migrated run (A then
  // B), one for the reference run (C).
  auto g1 = vfio::Mapping::anonymous(kGuestSize);
  auto g2 = vfio::Mapping::anonymous(kGuestSize);
  ASSERT_TRUE(g1.ok() && g2.ok());
  auto* mem1 = static_cast<uint8_t*>(g1.value().data());
  auto* mem2 = static_cast<uint8_t*>(g2.value().data());
  std::mt19937_64 rng(7);
  for (size_t i = kDataOff; i < kDataOff + 2 * kJobLen; i += 8) {
    uint64_t x = rng();
    std::memcpy(mem1 + i, &x, 8);
  }
  std::memcpy(mem2, mem1, kGuestSize);

  Side a = open_side("quarter"), b = open_side("quarter"), c = open_side("quarter");
  ASSERT_TRUE(a.m && b.m && c.m);
  for (Side* s : {&a, &b})
    ASSERT_TRUE(s->m->container.map_dma(kIova, mem1, kGuestSize, vfio::DmaAccess::kReadWrite).ok());
  ASSERT_TRUE(c.m->container.map_dma(kIova, mem2, kGuestSize, vfio::DmaAccess::kReadWrite).ok());

  // Reference: C runs the whole queue.
  DmaRig rc(c.dev(), mem2);
  rc.program(true);
  queue_jobs(rc);
  rc.doorbell();
  ASSERT_EQ(rc.wait(kJobs - 1), MDEVMIG_DMA_ST_OK);

  // A starts the same queue and is stopped while it is busy. Its engine is held to 32 MiB/s
  // (the queue is 4,215 steps of 64 KiB: about 8 s), so the queue is still running when
  // this thread gets to stop it, even if a busy host keeps it off the CPU for seconds;
  // at the default 1 GiB/s a loaded machine let the whole queue finish first.
  ASSERT_EQ(a.inst->set_attr("engine_budget", std::to_string(32u << 20)), 0);
  DmaRig ra(a.dev(), mem1);
  ra.program(true);
  ASSERT_TRUE(a.dev().write_as(kBar0, MDEVMIG_REG_SCRATCH(5), uint32_t{0xabcd}).ok());
  queue_jobs(ra);
  ra.doorbell();
  while (ra.reg(MDEVMIG_REG_RING_HEAD) < 1) {
  }
  ASSERT_TRUE(a.dev().set_mig_state(MigState::kStop).ok());
  const uint32_t head_at_stop = ra.reg(MDEVMIG_REG_RING_HEAD);
  ASSERT_LT(head_at_stop, kJobs) << "the queue finished before the stop: nothing was in flight";
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(ra.reg(MDEVMIG_REG_RING_HEAD), head_at_stop) << "the engine ran in STOP";

  auto fd = a.dev().set_mig_state(MigState::kStopCopy);
  ASSERT_TRUE(fd.ok() && fd.value().valid());
  std::vector<uint8_t> stream = read_all(fd.value().get());
  ASSERT_TRUE(a.dev().set_mig_state(MigState::kStop).ok());
  ASSERT_GT(stream.size(), 16u << 20) << "the stream must carry all 16 MiB of device memory";

  // B takes the stream in odd pieces and continues.
  auto irq = vfio::EventFd::create();
  ASSERT_TRUE(irq.ok());
  int efd = irq.value().fd();
  ASSERT_TRUE(b.dev().set_irq_eventfds(VFIO_PCI_MSI_IRQ_INDEX, 0, {&efd, 1}).ok());
  ASSERT_EQ(resume_v2(b.dev(), stream, 4097), 0);
  ASSERT_TRUE(b.dev().set_mig_state(MigState::kRunning).ok());
  DmaRig rb(b.dev(), mem1);
  ASSERT_EQ(rb.wait(kJobs - 1), MDEVMIG_DMA_ST_OK);
  EXPECT_TRUE(irq.value().wait(5s).ok()) << "no interrupt from the destination";

  EXPECT_EQ(mem_hash(b.dev(), 16u << 20), mem_hash(c.dev(), 16u << 20));
  EXPECT_EQ(std::memcmp(mem1 + kCmplOff, mem2 + kCmplOff, kJobs * sizeof(mdevmig_dma_cmpl)), 0);
  EXPECT_EQ(std::memcmp(mem1 + kDataOff + (2u << 20), mem2 + kDataOff + (2u << 20), 16 * 4096), 0);
  for (uint32_t r : {MDEVMIG_REG_RING_HEAD, MDEVMIG_REG_SEQ, MDEVMIG_REG_ERR_DESC,
                     MDEVMIG_REG_ERR_DMA, MDEVMIG_REG_INT_STATUS, MDEVMIG_REG_SCRATCH(5)})
    EXPECT_EQ(rb.reg(r), r == MDEVMIG_REG_SCRATCH(5) ? 0xabcdu : rc.reg(r))
        << "register 0x" << std::hex << r;
  auto stats = read_file(b.inst->sysfs_dir() + "/mdevmig/migration");
  ASSERT_TRUE(stats);
  EXPECT_NE(stats->find("bytes_received=" + std::to_string(stream.size())), std::string::npos)
      << *stats;
}

// ---- v1 ------------------------------------------------------------------------------------

// The v1 migration region, driven as QEMU 7.2 drives it.
class V1 {
 public:
  explicit V1(const vfio::Device& dev) : dev_(dev) {
    auto r = dev.region(kV1);
    EXPECT_TRUE(r.ok());
    auto data = dev.mmap_region(kV1, 0);
    EXPECT_TRUE(data.ok()) << (data.ok() ? "" : data.error().message());
    if (data.ok()) data_.emplace(std::move(data.value()));
  }
  int set_state(uint32_t s) {
    auto r = dev_.write_as(kV1, offsetof(vfio_device_migration_info, device_state), s);
    return r.ok() ? 0 : r.error().errnum;
  }
  uint32_t state() { return get<uint32_t>(offsetof(vfio_device_migration_info, device_state)); }
  uint64_t pending() { return get<uint64_t>(offsetof(vfio_device_migration_info, pending_bytes)); }
  // One save step: stage, then copy out data_size bytes.
  size_t save_chunk(std::vector<uint8_t>& out) {
    uint64_t off = get<uint64_t>(offsetof(vfio_device_migration_info, data_offset));
    uint64_t size = get<uint64_t>(offsetof(vfio_device_migration_info, data_size));
    EXPECT_EQ(off, 4096u);
    auto* p = static_cast<uint8_t*>(data_->data());
    out.insert(out.end(), p, p + size);
    return size;
  }
  // One resume step: data into the section, then data_size. 0 or errno.
  int resume_chunk(const uint8_t* p, size_t n) {
    get<uint64_t>(offsetof(vfio_device_migration_info, data_offset));
    std::memcpy(data_->data(), p, n);
    auto r = dev_.write_as(kV1, offsetof(vfio_device_migration_info, data_size), uint64_t{n});
    return r.ok() ? 0 : r.error().errnum;
  }
  size_t data_capacity() const { return data_ ? data_->size() : 0; }

 private:
  template <typename T>
  T get(uint64_t off) {
    auto r = dev_.read_as<T>(kV1, off);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? r.value() : T{};
  }
  const vfio::Device& dev_;
  std::optional<vfio::Mapping> data_;
};

TEST_F(MigrationTest, V1PreCopyConvergesUnderAWriterAndStopCopyCarriesOnlyTheDirtySet) {
  Side a = open_side("quarter"), b = open_side("quarter");
  ASSERT_TRUE(a.m && b.m);
  auto info = a.dev().region(kV1);
  ASSERT_TRUE(info.ok());
  ASSERT_TRUE(info.value()->type.has_value());
  EXPECT_EQ(info.value()->type->type, uint32_t{VFIO_REGION_TYPE_MIGRATION_DEPRECATED});
  EXPECT_EQ(info.value()->type->subtype, uint32_t{VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED});

  auto bar2 = a.dev().mmap_region(kBar2, 0);
  ASSERT_TRUE(bar2.ok());
  auto* mem = static_cast<uint8_t*>(bar2.value().data());
  std::memset(mem, 0x11, 16u << 20);
  std::atomic<bool> stop{false};
  std::thread writer([&] {  // keeps 16 pages of BAR2 dirty, like a running guest
    for (uint32_t r = 0; !stop; ++r) {
      for (int p = 0; p < 16; ++p) std::memcpy(mem + (1000 + p) * 4096 + (r % 1024) * 4, &r, 4);
      std::this_thread::sleep_for(2ms);
    }
  });

  V1 v1(a.dev());
  std::vector<uint8_t> stream;
  EXPECT_EQ(v1.set_state(VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING), 0);
  EXPECT_EQ(v1.set_state(VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING), 0)
      << "not idempotent";
  const uint64_t first_pending = v1.pending();
  EXPECT_GT(first_pending, 16u << 20);
  uint64_t pending = first_pending;
  int iterations = 0;
  for (; iterations < 200 && pending > (256u << 10); ++iterations) {
    v1.save_chunk(stream);
    pending = v1.pending();
  }
  EXPECT_LE(pending, 256u << 10) << "pre-copy did not converge in " << iterations << " steps";
  stop = true;
  writer.join();  // the "VM" stops before stop-and-copy

  const size_t precopy_bytes = stream.size();
  EXPECT_EQ(v1.set_state(VFIO_DEVICE_STATE_V1_SAVING), 0);
  EXPECT_EQ(v1.set_state(VFIO_DEVICE_STATE_V1_SAVING), 0);
  while (v1.pending() > 0) ASSERT_GT(v1.save_chunk(stream), 0u);
  EXPECT_EQ(v1.set_state(0), 0);
  const size_t stopcopy_bytes = stream.size() - precopy_bytes;
  EXPECT_LT(stopcopy_bytes, 1u << 20) << "stop-and-copy resent far more than the dirty set";
  EXPECT_GT(stopcopy_bytes, 0u);
  const uint64_t source_hash = XXH3_64bits(mem, 16u << 20);

  // Resume into B through v1, committing with RESUMING -> RUNNING as QEMU 7.2 does.
  V1 w(b.dev());
  EXPECT_EQ(w.set_state(VFIO_DEVICE_STATE_V1_RESUMING), 0);
  for (size_t off = 0; off < stream.size(); off += w.data_capacity() / 3) {
    size_t n = std::min(w.data_capacity() / 3, stream.size() - off);
    ASSERT_EQ(w.resume_chunk(stream.data() + off, n), 0) << "at " << off;
  }
  EXPECT_EQ(w.set_state(VFIO_DEVICE_STATE_V1_RUNNING), 0);
  EXPECT_EQ(w.state(), uint32_t{VFIO_DEVICE_STATE_V1_RUNNING});
  EXPECT_EQ(mem_hash(b.dev(), 16u << 20), source_hash);
  auto stats = read_file(a.inst->sysfs_dir() + "/mdevmig/migration");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->find("precopy_iterations=0"), std::string::npos) << *stats;
}

TEST_F(MigrationTest, V1AndV2ExcludeEachOtherAndV1RejectsBadStates) {
  Side a = open_side("eighth");
  ASSERT_TRUE(a.m);
  V1 v1(a.dev());
  EXPECT_EQ(v1.set_state(VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING), EINVAL);
  EXPECT_EQ(v1.set_state(VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_RESUMING), EINVAL);
  EXPECT_EQ(v1.state(), uint32_t{VFIO_DEVICE_STATE_V1_RUNNING});
  ASSERT_TRUE(a.dev().set_mig_state(MigState::kStop).ok());
  EXPECT_EQ(v1.set_state(VFIO_DEVICE_STATE_V1_SAVING), EBUSY);
  ASSERT_TRUE(a.dev().set_mig_state(MigState::kRunning).ok());
  EXPECT_EQ(v1.set_state(0), 0);
  EXPECT_FALSE(a.dev().set_mig_state(MigState::kStopCopy).ok()) << "v2 used while v1 is active";
  EXPECT_EQ(v1.set_state(VFIO_DEVICE_STATE_V1_RUNNING), 0);
  // A failed v1 commit leaves the error state until reset.
  EXPECT_EQ(v1.set_state(VFIO_DEVICE_STATE_V1_RESUMING), 0);
  EXPECT_EQ(v1.set_state(VFIO_DEVICE_STATE_V1_RUNNING), EINVAL);
  EXPECT_EQ(v1.state(), uint32_t{VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING});
  ASSERT_TRUE(a.dev().reset().ok());
  EXPECT_EQ(v1.state(), uint32_t{VFIO_DEVICE_STATE_V1_RUNNING});
}

// ---- v1 as QEMU 7.2 runs it, with guest RAM -----------------------------------------------

// A guest's memory and what QEMU 7.2 does with it around the v1 region: RAM copied to the
// destination's memory in a first pass, then the pages the source container reports dirty
// (VFIO_IOMMU_DIRTY_PAGES), the last time after the device stopped. The guest played here
// does what a Linux driver does before a migration: one ring, a copy that fails to read
// (READ_FAULT), a soft reset, a second ring elsewhere, and many copies in flight.
class V1Guest {
 public:
  // Guest memory (kGuestSize at kIova): ring A at 0, its records at 64 KiB; ring B at
  // 256 KiB, its records at 320 KiB; copy sources from 1 MiB, destinations from 2 MiB.
  static constexpr uint64_t kRingA = 0, kCmplA = 64u << 10, kRingB = 256u << 10,
                            kCmplB = 320u << 10, kSrc = 1u << 20, kDst = 2u << 20;
  static constexpr uint32_t kEntries = 64, kCopy = 16u << 10, kCopies = 60;
  static constexpr uint64_t kPages = kGuestSize / 4096;

  explicit V1Guest(uint8_t* mem) : mem_(mem) {}

  // Every page gets a pattern of its own: a page that changes shows it.
  void fill() {
    for (uint64_t p = 0; p < kPages; ++p)
      for (uint64_t i = 0; i < 4096; i += 8) {
        uint64_t v = (p << 32) ^ i ^ 0x5a5a5a5a00000000ull;
        std::memcpy(mem_ + p * 4096 + i, &v, 8);
      }
  }
  // Programs a ring at `ring` (MSI, bus master), as a driver's probe does after a reset.
  void program(const vfio::Device& dev, uint64_t ring) {
    ring_ = ring;
    slot_ = 0;
    cfg16(dev, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    cfg32(dev, MDEVMIG_CFG_MSI_CAP + PCI_MSI_ADDRESS_LO, 0xfee00000);
    cfg16(dev, MDEVMIG_CFG_MSI_CAP + PCI_MSI_DATA_64, 0x41);
    cfg16(dev, MDEVMIG_CFG_MSI_CAP + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE);
    reg(dev, MDEVMIG_REG_CTRL, MDEVMIG_CTRL_RESET);
    reg(dev, MDEVMIG_REG_RING_BASE_LO, static_cast<uint32_t>(kIova + ring));
    reg(dev, MDEVMIG_REG_RING_BASE_HI, static_cast<uint32_t>((kIova + ring) >> 32));
    reg(dev, MDEVMIG_REG_RING_SIZE, kEntries);
    reg(dev, MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE);
  }
  // Queues a COPY_GUEST (guest offsets) with its record at `cmpl`; returns its slot.
  uint32_t queue(uint64_t src_iova, uint64_t dst, uint32_t len, uint64_t cmpl) {
    mdevmig_dma_desc d{};
    d.opcode = MDEVMIG_DMA_OP_COPY_GUEST;
    d.src = src_iova;
    d.dst = kIova + dst;
    d.len = len;
    d.cmpl = kIova + cmpl + uint64_t{slot_} * sizeof(mdevmig_dma_cmpl);
    d.user_data = slot_;
    mdevmig_dma_cmpl pending{};
    pending.status = MDEVMIG_DMA_ST_PENDING;
    std::memcpy(mem_ + cmpl + uint64_t{slot_} * sizeof(pending), &pending, sizeof(pending));
    std::memcpy(mem_ + ring_ + uint64_t{slot_} * sizeof(d), &d, sizeof(d));
    return slot_++;
  }
  void doorbell(const vfio::Device& dev) { reg(dev, MDEVMIG_REG_RING_TAIL, slot_ % kEntries); }
  uint32_t status(uint64_t cmpl, uint32_t slot) const {
    mdevmig_dma_cmpl c;
    std::memcpy(&c, mem_ + cmpl + uint64_t{slot} * sizeof(c), sizeof(c));
    return c.status;
  }
  // Waits until the record of `slot` is written; its status (PENDING: timeout).
  uint32_t wait(uint64_t cmpl, uint32_t slot, std::chrono::seconds limit = 30s) const {
    auto end = std::chrono::steady_clock::now() + limit;
    uint32_t st;
    while ((st = status(cmpl, slot)) == MDEVMIG_DMA_ST_PENDING &&
           std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(1ms);
    return st;
  }
  static uint32_t head(const vfio::Device& dev) {
    auto r = dev.read_as<uint32_t>(kBar0, MDEVMIG_REG_RING_HEAD);
    return r.ok() ? r.value() : ~0u;
  }

 private:
  static void reg(const vfio::Device& dev, uint32_t off, uint32_t v) {
    EXPECT_TRUE(dev.write_as(kBar0, off, v).ok()) << "BAR0 0x" << std::hex << off;
  }
  static void cfg16(const vfio::Device& dev, uint32_t off, uint16_t v) {
    EXPECT_TRUE(dev.write_as(kCfg, off, v).ok());
  }
  static void cfg32(const vfio::Device& dev, uint32_t off, uint32_t v) {
    EXPECT_TRUE(dev.write_as(kCfg, off, v).ok());
  }
  uint8_t* mem_;
  uint64_t ring_ = 0;
  uint32_t slot_ = 0;
};

// Copies the pages `c` reports dirty from `from` to `to`; how many.
size_t copy_dirty(const vfio::Container& c, const uint8_t* from, uint8_t* to) {
  auto bm = c.dirty_bitmap(kIova, kGuestSize, 4096);
  EXPECT_TRUE(bm.ok()) << (bm.ok() ? "" : bm.error().message());
  if (!bm.ok()) return 0;
  size_t n = 0;
  bm.value().for_each_set([&](uint64_t p) {
    std::memcpy(to + p * 4096, from + p * 4096, 4096);
    ++n;
  });
  return n;
}

// Pages of `a` and `b` that differ.
std::vector<uint64_t> differing_pages(const uint8_t* a, const uint8_t* b) {
  std::vector<uint64_t> v;
  for (uint64_t p = 0; p < V1Guest::kPages; ++p)
    if (std::memcmp(a + p * 4096, b + p * 4096, 4096)) v.push_back(p);
  return v;
}

// A save in QEMU 7.2's order (dirty tracking, 011, RAM passes, VM stop: 010, the last RAM
// pass, the device's data, 000), then a resume (100, data, 001). The destination's memory
// must equal the source's page for page before the destination runs; after it runs, the
// copies in flight end on the destination with their data, and no other page changes
// (the first ring and its records included: the soft reset ended them).
TEST_F(MigrationTest, V1SaveInQemuOrderLosesNoGuestPageAndTheDestinationWritesOnlyItsWork) {
  auto gs = vfio::Mapping::anonymous(kGuestSize);
  auto gd = vfio::Mapping::anonymous(kGuestSize);
  ASSERT_TRUE(gs.ok() && gd.ok());
  auto* src_mem = static_cast<uint8_t*>(gs.value().data());
  auto* dst_mem = static_cast<uint8_t*>(gd.value().data());
  Side a = open_side("quarter"), b = open_side("quarter");
  ASSERT_TRUE(a.m && b.m);
  ASSERT_TRUE(a.m->container.map_dma(kIova, src_mem, kGuestSize, vfio::DmaAccess::kReadWrite).ok());
  ASSERT_TRUE(b.m->container.map_dma(kIova, dst_mem, kGuestSize, vfio::DmaAccess::kReadWrite).ok());
  V1Guest g(src_mem);
  g.fill();

  // The first driver instance: ring A, a good copy, a copy from nowhere (READ_FAULT).
  g.program(a.dev(), V1Guest::kRingA);
  uint32_t s0 = g.queue(kIova + V1Guest::kSrc, V1Guest::kDst, 4096, V1Guest::kCmplA);
  uint32_t s1 = g.queue(1ull << 40, V1Guest::kDst + 4096, 8192, V1Guest::kCmplA);
  g.doorbell(a.dev());
  ASSERT_EQ(g.wait(V1Guest::kCmplA, s0), MDEVMIG_DMA_ST_OK);
  ASSERT_EQ(g.wait(V1Guest::kCmplA, s1), MDEVMIG_DMA_ST_READ_FAULT);
  // Unload and load again: soft reset, ring B. The engine is slowed down so that most
  // copies are still queued when the VM stops.
  ASSERT_EQ(a.inst->set_attr("engine_budget", std::to_string(20u * MDEVMIG_DMA_STEP_BYTES)), 0);
  g.program(a.dev(), V1Guest::kRingB);

  // QEMU 7.2's save_setup: dirty tracking on, the first RAM pass, then 011.
  ASSERT_TRUE(a.m->container.start_dirty_tracking().ok());
  ASSERT_TRUE(a.m->container.dirty_bitmap(kIova, kGuestSize, 4096).ok());
  std::memcpy(dst_mem, src_mem, kGuestSize);
  V1 v1(a.dev());
  std::vector<uint8_t> stream;
  ASSERT_EQ(v1.set_state(VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING), 0);
  std::vector<uint32_t> slots;
  for (uint32_t i = 0; i < V1Guest::kCopies; ++i)
    slots.push_back(g.queue(kIova + V1Guest::kSrc + i * V1Guest::kCopy,
                            V1Guest::kDst + i * V1Guest::kCopy, V1Guest::kCopy, V1Guest::kCmplB));
  g.doorbell(a.dev());
  // The guest CPU wrote ring B and its records: QEMU's own dirty log has those pages.
  for (uint64_t off : {V1Guest::kRingB, V1Guest::kCmplB})
    std::memcpy(dst_mem + off, src_mem + off, 4096);
  // Pre-copy: device data and RAM passes while the copies run.
  for (int pass = 0; pass < 5; ++pass) {
    v1.save_chunk(stream);
    copy_dirty(a.m->container, src_mem, dst_mem);
    std::this_thread::sleep_for(100ms);
  }
  // The VM stops: 010; the last RAM pass; the device's data until none is pending; 000.
  ASSERT_EQ(v1.set_state(VFIO_DEVICE_STATE_V1_SAVING), 0);
  const uint32_t head_at_stop = V1Guest::head(a.dev());
  ASSERT_LT(head_at_stop % V1Guest::kEntries, (slots.back() + 1) % V1Guest::kEntries)
      << "every copy finished before the stop: nothing was in flight";
  copy_dirty(a.m->container, src_mem, dst_mem);
  ASSERT_EQ(v1.set_state(VFIO_DEVICE_STATE_V1_SAVING), 0);
  while (v1.pending() > 0) ASSERT_GT(v1.save_chunk(stream), 0u);
  ASSERT_EQ(v1.set_state(0), 0);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(V1Guest::head(a.dev()), head_at_stop) << "the engine ran after 010";
  // Anything the device wrote after the last pass is a page the destination lacks.
  std::vector<uint64_t> lost = differing_pages(src_mem, dst_mem);
  EXPECT_TRUE(lost.empty()) << lost.size() << " pages differ after the save, the first at page "
                            << lost[0];
  ASSERT_TRUE(a.m->container.stop_dirty_tracking().ok());

  // The destination: 100, the data, 001 (as QEMU 7.2 starts it).
  std::vector<uint8_t> before(dst_mem, dst_mem + kGuestSize);
  V1 w(b.dev());
  ASSERT_EQ(w.set_state(VFIO_DEVICE_STATE_V1_RESUMING), 0);
  for (size_t off = 0; off < stream.size(); off += w.data_capacity()) {
    size_t n = std::min(w.data_capacity(), stream.size() - off);
    ASSERT_EQ(w.resume_chunk(stream.data() + off, n), 0) << "at " << off;
  }
  ASSERT_EQ(w.set_state(VFIO_DEVICE_STATE_V1_RUNNING), 0);
  V1Guest d(dst_mem);
  for (uint32_t s : slots) ASSERT_EQ(d.wait(V1Guest::kCmplB, s), MDEVMIG_DMA_ST_OK) << "slot " << s;
  std::this_thread::sleep_for(200ms);
  // Every copy landed; nothing else changed.
  for (uint32_t i = 0; i < V1Guest::kCopies; ++i)
    EXPECT_EQ(std::memcmp(dst_mem + V1Guest::kDst + i * V1Guest::kCopy,
                          dst_mem + V1Guest::kSrc + i * V1Guest::kCopy, V1Guest::kCopy),
              0)
        << "copy " << i;
  std::vector<uint64_t> changed;
  for (uint64_t p : differing_pages(before.data(), dst_mem)) {
    const uint64_t off = p * 4096;
    const bool work =
        (off >= V1Guest::kDst && off < V1Guest::kDst + V1Guest::kCopies * V1Guest::kCopy) ||
        off == V1Guest::kCmplB;
    if (!work) changed.push_back(p);
  }
  EXPECT_TRUE(changed.empty()) << changed.size()
                               << " pages outside the copies' targets changed, the first at page "
                               << changed[0];
}

// ---- hostile streams -------------------------------------------------------------------------

TEST_F(MigrationTest, HostileStreamsAreRejectedAndTheInstanceStaysUsable) {
  // Incompatible sources: another type, and the same type on a smaller parent.
  ASSERT_EQ(write_file("/sys/class/mdevmig/sim_add", "32"), 0);
  std::string small_parent = mdevmig_parents().back();
  Side a = open_side("eighth"), b = open_side("eighth"), q = open_side("quarter");
  ASSERT_TRUE(a.m && b.m && q.m);
  std::vector<uint8_t> smaller;
  {
    Side s;
    s.inst = std::make_unique<Instance>(small_parent, "eighth");
    auto m = vfio::open_mdev(s.inst->uuid());
    ASSERT_TRUE(m.ok());
    s.m.emplace(std::move(m.value()));
    smaller = save_v2(s.dev());
  }
  EXPECT_EQ(write_file("/sys/class/mdevmig/sim_remove", small_parent), 0);
  auto bar2 = a.dev().mmap_region(kBar2, 0);
  ASSERT_TRUE(bar2.ok());
  std::mt19937_64 rng(3);
  for (size_t i = 0; i < (8u << 20); i += 8) {
    uint64_t x = rng();
    std::memcpy(static_cast<uint8_t*>(bar2.value().data()) + i, &x, 8);
  }
  const std::vector<uint8_t> good = save_v2(a.dev());
  ASSERT_GT(good.size(), 8u << 20);
  const std::vector<uint8_t> wrong_size = save_v2(q.dev());

  auto reason = [&] {
    auto s = read_file(b.inst->sysfs_dir() + "/mdevmig/migration");
    auto pos = s ? s->find("last_load_error=") : std::string::npos;
    return pos == std::string::npos ? std::string("?")
                                    : s->substr(pos + 16, s->find('\n', pos) - pos - 16);
  };
  auto rejected = [&](const std::vector<uint8_t>& s, const char* what) {
    SCOPED_TRACE(what);
    EXPECT_NE(resume_v2(b.dev(), s, 65536), 0) << "accepted";
    EXPECT_EQ(b.dev().mig_state().value(), MigState::kError);
    EXPECT_TRUE(b.dev().reset().ok());
    EXPECT_EQ(b.dev().mig_state().value(), MigState::kRunning);
  };

  rejected({}, "empty");
  for (size_t cut :
       {size_t{1}, size_t{23}, size_t{24}, size_t{100}, good.size() / 2, good.size() - 1}) {
    rejected(std::vector<uint8_t>(good.begin(), good.begin() + cut), "truncated");
  }
  for (size_t at : {size_t{0}, size_t{5}, size_t{9}, size_t{17}, size_t{30}, good.size() / 3,
                    good.size() - 10}) {
    auto flipped = good;
    flipped[at] ^= 0x10;
    rejected(flipped, "bit flip");
  }
  rejected(wrong_size, "another type");
  EXPECT_EQ(reason(), "mdev type mismatch");
  rejected(smaller, "smaller memory");
  EXPECT_EQ(reason(), "device memory size mismatch");
  std::vector<uint8_t> garbage(4096);
  for (auto& x : garbage) x = static_cast<uint8_t>(rng());
  rejected(garbage, "garbage");
  auto trailing = good;
  trailing.push_back(0);
  rejected(trailing, "data after END");

  // After all that, B still takes a good stream.
  EXPECT_EQ(resume_v2(b.dev(), good, 1 << 20), 0);
  EXPECT_EQ(mem_hash(b.dev(), 8u << 20), XXH3_64bits(bar2.value().data(), 8u << 20));
}

TEST_F(MigrationTest, ResumeAcceptsOneByteWrites) {
  Side a = open_side("eighth"), b = open_side("eighth");
  ASSERT_TRUE(a.m && b.m);
  ASSERT_TRUE(a.dev().write_as(kBar0, MDEVMIG_REG_SCRATCH(1), uint32_t{77}).ok());
  ASSERT_TRUE(a.dev().write_as(kBar2, 12345, uint64_t{0x55aa}).ok());
  const std::vector<uint8_t> s = save_v2(a.dev());
  // 8 MiB one byte at a time is too slow under TCG: one-byte writes for the records
  // around the first page boundary, then large ones.
  ASSERT_TRUE(b.dev().set_mig_state(MigState::kStop).ok());
  auto fd = b.dev().set_mig_state(MigState::kResuming);
  ASSERT_TRUE(fd.ok() && fd.value().valid());
  size_t off = 0;
  for (; off < 10000; ++off) ASSERT_EQ(::write(fd.value().get(), &s[off], 1), 1) << off;
  for (; off < s.size(); off += 300000) {
    size_t n = std::min<size_t>(300000, s.size() - off);
    ASSERT_EQ(::write(fd.value().get(), &s[off], n), static_cast<ssize_t>(n));
  }
  ASSERT_TRUE(b.dev().set_mig_state(MigState::kRunning).ok());
  EXPECT_EQ(b.dev().read_as<uint32_t>(kBar0, MDEVMIG_REG_SCRATCH(1)).value(), 77u);
  EXPECT_EQ(b.dev().read_as<uint64_t>(kBar2, 12345).value(), 0x55aau);
}

// ---- sessions torn down halfway ------------------------------------------------------------

TEST_F(MigrationTest, SessionsTornDownHalfwayLeakNothing) {
  Side a = open_side("eighth"), b = open_side("eighth");
  ASSERT_TRUE(a.m && b.m);
  // Closing a data_fd mid-save: the device goes back to RUNNING and saves again fine.
  ASSERT_TRUE(a.dev().set_mig_state(MigState::kStop).ok());
  {
    auto fd = a.dev().set_mig_state(MigState::kStopCopy);
    ASSERT_TRUE(fd.ok() && fd.value().valid());
    std::vector<uint8_t> buf(100000);
    ASSERT_GT(::read(fd.value().get(), buf.data(), buf.size()), 0);
  }
  ASSERT_TRUE(a.dev().set_mig_state(MigState::kRunning).ok());
  const std::vector<uint8_t> s = save_v2(a.dev());
  ASSERT_GT(s.size(), 8u << 20);

  // Closing the device mid-resume: the data_fd is dead (ENODEV), closing it is fine.
  ASSERT_TRUE(b.dev().set_mig_state(MigState::kStop).ok());
  auto fd = b.dev().set_mig_state(MigState::kResuming);
  ASSERT_TRUE(fd.ok() && fd.value().valid());
  ASSERT_EQ(::write(fd.value().get(), s.data(), 50000), 50000);
  const std::string uuid = b.inst->uuid();
  b.m.reset();
  EXPECT_EQ(::write(fd.value().get(), s.data() + 50000, 1000), -1);
  EXPECT_EQ(errno, ENODEV);

  // Removing the instance while that data_fd is still open.
  b.inst.reset();
  EXPECT_NE(access(("/sys/bus/mdev/devices/" + uuid).c_str(), F_OK), 0);
  EXPECT_EQ(::write(fd.value().get(), s.data(), 10), -1);
  // A save data_fd outliving its device, too.
  ASSERT_TRUE(a.dev().set_mig_state(MigState::kStop).ok());
  auto sfd = a.dev().set_mig_state(MigState::kStopCopy);
  ASSERT_TRUE(sfd.ok() && sfd.value().valid());
  a.m.reset();
  a.inst.reset();
  char c;
  EXPECT_EQ(::read(sfd.value().get(), &c, 1), -1);
  EXPECT_EQ(errno, ENODEV);
}

}  // namespace
}  // namespace mdevmig::lab
