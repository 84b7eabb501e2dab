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
